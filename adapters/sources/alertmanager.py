"""Prometheus Alertmanager webhook receiver (`POST /hooks/alertmanager`), payload version 4.

Configure a receiver in alertmanager.yml (Alertmanager ≥ 0.22 for `authorization`):

    receivers:
      - name: autotask
        webhook_configs:
          - url: https://connector.example.net/hooks/alertmanager
            send_resolved: true
            max_alerts: 500          # the connector takes at most 500 alerts per webhook
            http_config:
              authorization:
                credentials_file: /etc/alertmanager/connector-hook-token

Alertmanager then POSTs (prometheus.io/docs/alerting/latest/configuration/#webhook_config):

    {"version": "4", "groupKey": "…", "truncatedAlerts": 0, "status": "firing|resolved",
     "receiver": "…", "groupLabels": {…}, "commonLabels": {…}, "commonAnnotations": {…},
     "externalURL": "…",
     "alerts": [{"status": "firing|resolved", "labels": {…}, "annotations": {…},
                 "startsAt": "<rfc3339>", "endsAt": "<rfc3339>", "generatorURL": "…",
                 "fingerprint": "…"}, …]}

Each entry of `alerts` becomes one alert (the group is Alertmanager's notion; tickets are per
alert):

- Identity: the alert's own `fingerprint` (a hash of its label set, the same on every
  Alertmanager of an HA cluster); without one (Alertmanager-like senders), a SHA-256 of its sorted
  labels, so the same labels in any order give the same alert.
- status: firing → active, resolved → cleared.
- Source time: `startsAt` for a firing alert, so the same firing alert re-sent every
  `group_interval`/`repeat_interval`, or by each of two HA Alertmanagers, is one event and
  deduplicates; `endsAt` for a resolved one (Alertmanager's zero time "0001-01-01T00:00:00Z" means
  unknown). A re-fire after a resolution has a new `startsAt`, so it is a new event.
- severity: from the `severity` label (constructor: `severity_label`): critical/crit/page/
  emergency/fatal/disaster/p1 → critical; error/err/high/major/p2 → error; warning/warn/medium/
  average/minor/moderate/p3 → warning; info/informational/information/low/notice/none/ok/debug/
  p4/p5 → info; absent or unknown → warning (labels are free-form, so an unknown word is kept in
  the properties rather than refused). The label's value is kept as the alert's raw severity,
  which the integration's `severity_maps["alertmanager"]` may map (say sev1 → critical).
- tenant: the first non-empty of the labels `tenant`, `customer` (constructor: `tenant_labels`).
- title: `annotations.summary`, else `labels.alertname`; message: `annotations.description`, else
  `annotations.message`; monitor: `labels.alertname`.
- host: `labels.instance` without its port ("srv01:9100" → "srv01", "[2001:db8::1]:9100" →
  "2001:db8::1", a probe URL → its host name), since the port is the exporter's, not the
  machine's; else the `host` or `hostname` label. The full instance stays in the properties.
- Properties: every label as `label.<name>`, every annotation as `annotation.<name>`, and
  `groupKey`, `receiver`, `externalURL`, `generatorURL` (and `truncatedAlerts` when > 0).

Reconciliation (constructor: `api_urls`, the Alertmanagers' base URLs, e.g. both of an HA pair):
the connector asks each `GET <url>/api/v2/alerts` which alerts are there now (silenced and
inhibited ones still fire) and resolves the tickets of alerts none of them lists any more: a
resolved notification lost on the way (a restart, a network cut) no longer leaves a ticket open.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate

from adapters.sources._common import (
    MAX_ALERTS,
    NAME_LIMIT,
    BatchSource,
    Instant,
    Scalar,
    SourceSchema,
    Text,
    fitted,
    flatten,
    items_of,
    judge_each,
    load_one,
    present,
    severity_of,
)
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, SenderSnippet, Severity
from connector.errors import PayloadError

STATUSES = {"firing": AlertStatus.ACTIVE, "resolved": AlertStatus.CLEARED}

#: Severity label values seen in alerting rules (Prometheus mixins use critical/warning/info;
#: PagerDuty-style rules page/high/low; Zabbix-style disaster/average), onto four severities.
SEVERITY_WORDS = {
    **dict.fromkeys(
        ["critical", "crit", "page", "emergency", "emerg", "fatal", "disaster", "p1"],
        Severity.CRITICAL,
    ),
    **dict.fromkeys(["error", "err", "high", "major", "p2"], Severity.ERROR),
    **dict.fromkeys(
        ["warning", "warn", "medium", "average", "minor", "moderate", "p3"], Severity.WARNING
    ),
    **dict.fromkeys(
        ["info", "informational", "information", "low", "notice", "none", "ok", "debug"]
        + ["p4", "p5"],
        Severity.INFO,
    ),
}

#: Why: Alertmanager writes Go's zero time for an endsAt it does not know, as in the documented
#: example payloads ("endsAt": "0001-01-01T00:00:00Z"); it is no time at all.
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

#: Why strip the port: `instance` is the scrape target, "<host>:<exporter port>"
#: (srv01:9100 for node_exporter); the ticket is about the machine, whatever exporter saw it.
_HOST_PORT = re.compile(r"(?P<host>[^:\[\]]+):\d{1,5}")
_BRACKETED = re.compile(r"\[(?P<host>[0-9A-Fa-f:.%\w-]+)\](:\d{1,5})?")


def host_of(instance: str) -> str:
    """The machine in an `instance` label: without the exporter's port; a URL's host name."""
    instance = instance.strip()
    if "://" in instance:
        try:
            return urlsplit(instance).hostname or instance
        except ValueError:
            return instance
    for pattern in (_HOST_PORT, _BRACKETED):
        match = pattern.fullmatch(instance)
        if match:
            return match["host"]
    return instance


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable id for a label set: SHA-256 of its sorted name/value pairs."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return "labels:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _labels() -> fields.Dict:
    return fields.Dict(keys=Text(), values=Scalar(), load_default=dict)


class AlertmanagerAlertSchema(SourceSchema):
    """One entry of `alerts`. Unknown fields are ignored."""

    words = ("status",)

    status = Text(
        required=True,
        validate=validate.OneOf(sorted(STATUSES), error="Must be one of: {choices}."),
    )
    labels = _labels()
    annotations = _labels()
    startsAt = Instant(required=True, epoch=False)  # Alertmanager's own (camelCase) field names
    endsAt = Instant(load_default=None, epoch=False)
    generatorURL = Text(load_default="")
    fingerprint = Text(load_default="")


class AlertmanagerGroupSchema(SourceSchema):
    """The webhook's group fields (the alerts are loaded one by one). Unknown fields ignored."""

    version = Text(
        load_default="4", validate=validate.Equal("4", error="Only version 4 is understood.")
    )
    groupKey = Text(load_default="")
    truncatedAlerts = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    status = Text(load_default="")
    receiver = Text(load_default="")
    groupLabels = _labels()
    commonLabels = _labels()
    commonAnnotations = _labels()
    externalURL = Text(load_default="")


#: Built once: a marshmallow schema is reusable, and building one per webhook cost more than
#: loading the alert with it.
_GROUP_SCHEMA = AlertmanagerGroupSchema()
_ALERT_SCHEMA = AlertmanagerAlertSchema()


class AlertmanagerSource(BatchSource):
    """Parses Alertmanager webhooks (version 4) into one IncomingAlert per alert."""

    slug = "alertmanager"
    display_name = "Prometheus Alertmanager"

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """The receiver to add to alertmanager.yml (Alertmanager 0.22 or newer)."""
        receiver = "\n".join(
            [
                "receivers:",
                "  - name: autotask",
                "    webhook_configs:",
                f"      - url: {hook_url}",
                "        send_resolved: true",
                f"        max_alerts: {MAX_ALERTS}",
                "        http_config:",
                "          authorization:",
                "            credentials_file: /etc/alertmanager/connector-hook-token",
            ]
        )
        return [
            SenderSnippet(
                title="Alertmanager receiver",
                where="alertmanager.yml: add the receiver and route alerts to it; put a webhook"
                " token in the credentials file",
                text=receiver,
            )
        ]

    def __init__(
        self,
        severity_label: str = "severity",
        tenant_labels: Sequence[str] = ("tenant", "customer"),
        api_urls: Sequence[str] = (),
    ) -> None:
        self.severity_label = severity_label
        # One label name given as text (source_options from a settings file) is one label.
        labels = (tenant_labels,) if isinstance(tenant_labels, str) else tuple(tenant_labels)
        self.tenant_labels = labels
        urls = (api_urls,) if isinstance(api_urls, str) else tuple(api_urls)
        for url in urls:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"api_urls: {url!r} is not an http(s) URL of an Alertmanager")
        self.api_urls = urls

    def firing_urls(self) -> tuple[str, ...]:
        """Where to ask which alerts are there now: every configured Alertmanager's alert list."""
        # Why these filters: Alertmanager's API v2 lists active, silenced, inhibited and
        # unprocessed alerts when asked (openapi.yaml, GET /alerts); a silenced or inhibited
        # alert still fires, it is only not notified.
        query = "active=true&silenced=true&inhibited=true&unprocessed=true"
        return tuple(f"{url.rstrip('/')}/api/v2/alerts?{query}" for url in self.api_urls)

    def firing_in(self, body: bytes) -> set[str]:
        """The fingerprints of the alerts an Alertmanager's alert list names (PayloadError if the
        answer is not one): the same fingerprints its webhooks give the alerts."""
        try:
            listed = json.loads(body)
        except ValueError as e:
            raise PayloadError(f"the Alertmanager's alert list is not JSON: {e}") from e
        if not isinstance(listed, list):
            raise PayloadError("the Alertmanager's alert list is not a JSON list")
        fingerprints = set()
        for item in listed:
            if not isinstance(item, dict):
                raise PayloadError("an entry of the Alertmanager's alert list is not an object")
            raw_labels = item.get("labels")
            labels = (
                {str(k): str(v) for k, v in raw_labels.items()}
                if isinstance(raw_labels, dict)
                else {}
            )
            fingerprint = str(item.get("fingerprint") or "").strip()
            # As _normalize identifies an alert of a webhook.
            if not fingerprint or len(fingerprint) > NAME_LIMIT:
                fingerprint = label_fingerprint(labels) if labels else _digest(fingerprint)
            fingerprints.add(fingerprint)
        return fingerprints

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge a webhook alert by alert; invalid group fields refuse the whole webhook."""
        if not isinstance(payload, dict):
            raise PayloadError("the body must be a JSON object: an Alertmanager webhook (v4)")
        group = {k: v for k, v in payload.items() if k != "alerts"}
        errors: dict[str, list[str]] = {}
        try:
            common = _GROUP_SCHEMA.load(group)
        except ValidationError as e:
            # The group's fields apply to every alert of it: none can be read without them.
            errors.update(flatten(e.messages))
            common = {}
        if "alerts" not in payload:
            errors["alerts"] = ["Missing data for required field."]
        if errors:
            raise PayloadError.naming(errors)
        items, prefix = items_of({"alerts": payload["alerts"]}, "alerts", "")
        schema = _ALERT_SCHEMA

        def read(item: Any, where: str) -> IncomingAlert:
            data = load_one(schema, item, where)
            if not data["fingerprint"].strip() and not data["labels"]:
                raise PayloadError.naming(
                    {f"{where}.labels": ["An alert needs a fingerprint or labels."]}
                )
            return self._normalize(data, common)

        return judge_each(items, prefix, read, lambda item: dict(group, alerts=[item]))

    def _normalize(self, data: dict[str, Any], common: dict[str, Any]) -> IncomingAlert:
        labels: dict[str, str] = data["labels"]
        annotations: dict[str, str] = data["annotations"]
        status = STATUSES[data["status"]]
        fingerprint = data["fingerprint"].strip()
        # Why: Alertmanager's fingerprint is a hash of the label set, equal on every cluster
        # member (webhook_config docs: "fingerprint to identify the alert"); senders that mimic
        # the format may omit it, so the labels stand in, sorted so their order does not matter.
        if not fingerprint or len(fingerprint) > NAME_LIMIT:
            fingerprint = label_fingerprint(labels) if labels else _digest(fingerprint)
        started: datetime = data["startsAt"]
        ended: datetime | None = data["endsAt"]
        if ended == GO_ZERO_TIME:
            ended = None
        # Why: Alertmanager re-sends a firing alert every repeat/group interval, and each member
        # of an HA cluster notifies on its own (jiralert #119, peers.md); its startsAt is the same
        # in every copy, so (fingerprint, firing, startsAt) deduplicates them. A resolution
        # happened at endsAt.
        occurred = started if status is AlertStatus.ACTIVE else ended
        alertname = labels.get("alertname", "").strip()
        raw_severity = labels.get(self.severity_label, "").strip()
        host = host_of(labels.get("instance", "")) or _first(labels, ("host", "hostname"))
        properties = {
            **{f"label.{name}": value for name, value in labels.items()},
            **{f"annotation.{name}": value for name, value in annotations.items()},
            **present(
                [
                    ("groupKey", common.get("groupKey", "")),
                    ("receiver", common.get("receiver", "")),
                    ("externalURL", common.get("externalURL", "")),
                    ("generatorURL", data["generatorURL"]),
                    ("truncatedAlerts", str(common.get("truncatedAlerts") or "")),
                ]
            ),
        }
        title = annotations.get("summary", "").strip() or alertname or f"Alert {fingerprint}"
        return fitted(
            IncomingAlert(
                source=self.slug,
                fingerprint=fingerprint,
                status=status,
                severity=severity_of(raw_severity, SEVERITY_WORDS),
                title=title,
                message=annotations.get("description", "") or annotations.get("message", ""),
                host=host,
                tenant=_first(labels, self.tenant_labels),
                monitor=alertname,
                properties=properties,
                started_at=started,
                occurred_at=occurred,
                raw_severity=raw_severity,
            )
        )


def _first(labels: dict[str, str], names: Sequence[str]) -> str:
    """The first of the named labels that has a value (stripped), else ""."""
    return next((labels[n].strip() for n in names if labels.get(n, "").strip()), "")


def _digest(text: str) -> str:
    """A fingerprint too long for the alert table, as a short stable digest."""
    return "fingerprint:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
