"""Datto RMM monitor webhooks (`POST /hooks/datto_rmm`).

Datto RMM sends one payload when an alert is triggered and, optionally, another when it is
resolved, each written by the admin with Datto RMM's `[variable]` placeholders (a monitor's
Response › Webhook, or Setup › Integrations › Global Webhooks). Configure these two bodies,
shipped as `bodies/datto_rmm.json` (triggered) and `bodies/datto_rmm_resolved.json`, sent as
`application/json` (or `text/plain`):

    {
      "layout": "datto-rmm-raw-1",
      "status": "triggered",
      "alert_uid": "[alert_uid]",
      "priority": "[alert_priority]",
      "device_uid": "[device_id]",
      "site_uid": "[site_id]",
      "platform": "[platform]",
      "category": "[alert_category]",
      "site_name": "[site_name]",
      "hostname": "[device_hostname]",
      "message": "[alert_message]"
    }

and the same with `"status": "resolved"` for the resolution payload. Where a monitor's webhook
cannot insert the priority, write it literally ("Critical" … "Information"), as the monitor's
priority is fixed per monitor anyway.

Why the `layout` member: Datto RMM puts each variable's value into the body as it is, without
JSON escaping, so an alert message with a double quote, a Windows path (`C:\\`), a newline or a
tab breaks the JSON (a 400: the alert would be lost) or decodes to something else
(`C:\temp\new`). A body that starts with `"layout": "datto-rmm-raw-1"` is never JSON-decoded:
it is read by the shipped body's member order and every value is taken literally
(adapters/sources/_layout.py). Whitespace may be changed, members not: re-paste the body to change
it. The one value that cannot be read is one containing the text that separates its member from
the next (`", "hostname": "` in a site name, say): such a body is refused as ambiguous, never
misread, and kept whole as a rejected webhook. `message`, the free text, comes last.

Other bodies:

- Without a `layout` member the body is read as strict JSON (relays that escape, bodies with the
  optional `monitor`, `title`, `timestamp` (ISO 8601, or epoch seconds or milliseconds as in
  Datto RMM's API) and `properties` (e.g. `{"autotask.accountid": "29683415"}` in a site's own
  webhook), `{"alerts": [...]}` batches). Their values must not need escaping.
- The bodies shipped before layouts (no marker, `message` fourth) are read as JSON when they are
  valid JSON, else by their layout, so existing deployments stop losing alerts with a quote or a
  backslash. Valid JSON still misreads `\t`-like sequences: re-paste the bodies.

How the body becomes an alert:

- Identity: `alert_uid`, Datto RMM's id of one alert (a new alert after a resolution gets a new
  uid, so each one is its own alert and ticket).
- status: triggered → active, resolved → cleared.
- priority → severity: Critical → critical, High → error, Moderate → warning, Low → info,
  Information → info. Datto RMM has five priorities and the connector four severities; Low and
  Information both mean "no action needed now", so both are info (the integration's severity map
  then picks the Autotask priority). Empty → warning (Moderate). The priority word is kept as
  the alert's raw severity, which the integration's `severity_maps["datto_rmm"]` may map
  otherwise (say Moderate → error).
- tenant: `site_name` (the Datto RMM site; Datto's own Autotask integration maps sites to
  Autotask organizations); host: `hostname`; monitor: `monitor`, else `category`.
- title: `title`, else the first line of the message, else "<monitor> on <hostname>"; message:
  `message`. Source time: `timestamp` when given; without it a repeat of the same payload is
  still a duplicate (the alert's trigger/resolve cycle identifies it).
- Properties: `alert_uid`, `alert.type` (category), `datto_rmm.device_uid`,
  `datto_rmm.site_uid`, `datto_rmm.platform`, `datto_rmm.priority`, and every entry of
  `properties` that has a value.
- A variable Datto RMM does not fill stays in the body literally (`"[site_id]"`); such values are
  empty. Datto RMM's test webhook (sent from the monitor form) leaves *every* variable literal: it
  is answered 202 with no alert, so the test shows the connection works and nothing is stored. A
  body whose `alert_uid` is literal while other variables are filled (a misspelt variable) is a
  400 naming `alert_uid`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import validate

from adapters.sources._common import (
    ID_LIMIT,
    BatchSource,
    Instant,
    SourceSchema,
    Text,
    filled,
    fitted,
    items_of,
    judge_each,
    known_word,
    loading,
    present,
    properties_field,
    severity_of,
    shipped_body,
)
from adapters.sources._layout import Layout, media_type, read_raw_body, without_marker
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, SenderSnippet, Severity

#: A variable Datto RMM left unsubstituted, e.g. `[site_id]` (its test webhook sends them so).
UNSUBSTITUTED = re.compile(r"\[[A-Za-z0-9_]{1,100}\]")

#: The shipped bodies (bodies/datto_rmm*.json), free text last. Why a layout and not JSON: the
#: variables are substituted raw (see the module docstring); this version of it is named by the
#: body's leading `"layout"` member.
LAYOUT = Layout(
    "datto-rmm-raw-1",
    [
        ("status",),
        ("alert_uid",),
        ("priority",),
        ("device_uid",),
        ("site_uid",),
        ("platform",),
        ("category",),
        ("site_name",),
        ("hostname",),
        ("message",),
    ],
    marker="datto-rmm-raw-1",
)
#: The bodies shipped before layout markers, read by their order only when not valid JSON.
SHIPPED_BEFORE_LAYOUTS = Layout(
    "Datto RMM body shipped before layouts",
    [
        ("status",),
        ("alert_uid",),
        ("priority",),
        ("message",),
        ("category",),
        ("hostname",),
        ("device_uid",),
        ("site_uid",),
        ("site_name",),
        ("platform",),
    ],
    marker=None,
)

STATUSES = {
    "triggered": AlertStatus.ACTIVE,
    "resolved": AlertStatus.CLEARED,
}

#: Datto RMM alert priorities (its Autotask integration page: Critical, High, Moderate, Low,
#: Information) onto the connector's four severities; see the module docstring for why.
PRIORITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.ERROR,
    "moderate": Severity.WARNING,
    "low": Severity.INFO,
    "information": Severity.INFO,
}


#: The fields Datto RMM fills from variables (the others are written literally by the admin).
VARIABLE_FIELDS = (
    "message",
    "category",
    "hostname",
    "device_uid",
    "site_uid",
    "site_name",
    "platform",
    "timestamp",
)


def is_test_webhook(item: Any) -> bool:
    """Datto RMM's test webhook: the alert uid and every other variable left literal or empty."""
    # Why: the monitor form's "test" sends the payload with no alert behind it, variables
    # unsubstituted (public receivers recognise it by `siteId == "[site_id]"`).
    if not isinstance(item, dict):
        return False
    uid = item.get("alert_uid")
    if not isinstance(uid, str) or not UNSUBSTITUTED.fullmatch(uid.strip()):
        return False
    for name in VARIABLE_FIELDS:
        value = item.get(name, "")
        if not isinstance(value, str) or not (
            not value.strip() or UNSUBSTITUTED.fullmatch(value.strip())
        ):
            return False
    return True


class DattoRmmAlertSchema(SourceSchema):
    """The recommended Datto RMM body. Unknown fields are ignored; the status is case-insensitive.

    The priority keeps its case: it is the alert's raw severity, as Datto RMM wrote it.
    """

    words = ("status",)

    status = Text(
        required=True,
        blank=UNSUBSTITUTED,
        validate=validate.OneOf(sorted(STATUSES), error="Must be one of: {choices}."),
    )
    alert_uid = Text(required=True, blank=UNSUBSTITUTED, validate=filled(ID_LIMIT))
    priority = Text(
        load_default="",
        blank=UNSUBSTITUTED,
        validate=known_word(PRIORITIES, "Critical, High, Moderate, Low, Information"),
    )
    message = Text(load_default="", blank=UNSUBSTITUTED)
    category = Text(load_default="", blank=UNSUBSTITUTED)
    monitor = Text(load_default="", blank=UNSUBSTITUTED)
    title = Text(load_default="", blank=UNSUBSTITUTED)
    hostname = Text(load_default="", blank=UNSUBSTITUTED)
    device_uid = Text(load_default="", blank=UNSUBSTITUTED)
    site_uid = Text(load_default="", blank=UNSUBSTITUTED)
    site_name = Text(load_default="", blank=UNSUBSTITUTED)
    platform = Text(load_default="", blank=UNSUBSTITUTED)
    timestamp = Instant(load_default=None, blank=UNSUBSTITUTED)
    properties = properties_field(blank=UNSUBSTITUTED)


#: Built once: a marshmallow schema is reusable, and building one per webhook cost more than
#: loading the alert with it.
_ALERT_SCHEMA = DattoRmmAlertSchema()


class DattoRmmSource(BatchSource):
    """Parses Datto RMM alert webhooks into IncomingAlerts."""

    slug = "datto_rmm"
    display_name = "Datto RMM"

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """The webhook of a monitor's response (or Global Webhooks): two bodies."""
        where = (
            "Datto RMM › a monitor's Response › Webhook (or Setup › Integrations › Global"
            f" Webhooks): URL {hook_url}, header Authorization: Bearer <webhook token>; {{}}"
        )
        return [
            SenderSnippet(
                title="Datto RMM, alert triggered",
                where=where.format("the triggered payload"),
                text=shipped_body("datto_rmm.json"),
                content_type="application/json",
            ),
            SenderSnippet(
                title="Datto RMM, alert resolved",
                where=where.format("the resolved payload"),
                text=shipped_body("datto_rmm_resolved.json"),
                content_type="application/json",
            ),
        ]

    #: The payload is raw text the admin typed; its content type is whatever was chosen.
    content_types = ("application/json", "text/plain")

    def decode_body(self, raw: bytes, content_type: str) -> Any:
        """A raw body by its layout, else JSON, else the layout shipped before markers."""
        _, charset = media_type(content_type)
        return read_raw_body(raw, charset, [LAYOUT], SHIPPED_BEFORE_LAYOUTS)

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge one webhook (or {"alerts": [...]}) alert by alert; bad fields are named."""
        items, prefix = items_of(payload, "alerts", "the Datto RMM body (see the docs)")
        if all(is_test_webhook(item) for item in items):
            return ParsedWebhook()
        read = loading(_ALERT_SCHEMA, self._normalize)
        return judge_each(items, prefix, read, without_marker)

    def _normalize(self, data: dict[str, Any]) -> IncomingAlert:
        monitor = data["monitor"] or data["category"]
        first_line = data["message"].strip().splitlines()[0] if data["message"].strip() else ""
        if data["title"]:
            title = data["title"]
        elif first_line:
            title = first_line
        elif data["hostname"]:
            title = f"{monitor or 'Datto RMM alert'} on {data['hostname']}"
        else:
            title = monitor or f"Datto RMM alert {data['alert_uid']}"
        # A property left as a literal `[variable]` is empty: no property.
        properties = present(
            [
                *data["properties"].items(),
                ("alert_uid", data["alert_uid"]),
                ("alert.type", data["category"]),
                ("datto_rmm.device_uid", data["device_uid"]),
                ("datto_rmm.site_uid", data["site_uid"]),
                ("datto_rmm.platform", data["platform"]),
                ("datto_rmm.priority", data["priority"].strip()),
            ]
        )
        occurred: datetime | None = data["timestamp"]
        status = STATUSES[data["status"]]
        return fitted(
            IncomingAlert(
                source=self.slug,
                fingerprint=data["alert_uid"],
                status=status,
                severity=severity_of(data["priority"], PRIORITIES),
                title=title,
                message=data["message"],
                host=data["hostname"],
                tenant=data["site_name"],
                monitor=monitor,
                properties=properties,
                started_at=occurred if status is AlertStatus.ACTIVE else None,
                occurred_at=occurred,
                raw_severity=data["priority"].strip(),
            )
        )
