"""LogicMonitor custom HTTP delivery (`POST /hooks/logicmonitor`).

LogicMonitor lets the admin write the webhook body with its `##TOKEN##` variables (Settings ›
Integrations › Custom HTTP Delivery; "Use the same URL and data to notify on various alert
activity", HTTP POST, raw data). Configure this body, shipped as `bodies/logicmonitor.json`,
with the Content-Type `application/json` (or `text/plain`):

    {
      "layout": "logicmonitor-raw-1",
      "alert_id": "##ALERTID##",
      "status": "##ALERTSTATUS##",
      "level": "##LEVEL##",
      "alert_type": "##ALERTTYPE##",
      "start_epoch": "##STARTEPOCH##",
      "start": "##START##",
      "date": "##DATE##",
      "tenant": "##connector.tenant##",
      "properties": {
        "autotask.accountid": "##autotask.accountid##"
      },
      "admin": "##ADMIN##",
      "url": "##ALERTDETAILURL##",
      "group": "##GROUP##",
      "host": "##HOST##",
      "datasource": "##DATASOURCE##",
      "datapoint": "##DATAPOINT##",
      "value": "##VALUE##",
      "threshold": "##THRESHOLD##",
      "instance": "##INSTANCE##",
      "message": "##MESSAGE##"
    }

`tenant` and `properties` name resource properties (set on a client's resource group, inherited
by its devices): `connector.tenant` is the tenant the connector maps to an Autotask company, and
`autotask.accountid` names the company directly and beats the tenant map.

Why the `layout` member: LogicMonitor puts each token's value into the body as it is, without
JSON escaping, so a value with a double quote, a backslash (`C:\\`), a newline or a tab breaks
the JSON (a 400, which LogicMonitor does not retry: the alert would be lost), or decodes to
something else (`C:\temp\new`). A body that starts with `"layout": "logicmonitor-raw-1"` is
never JSON-decoded: it is read by the shipped body's member order and every value is taken
literally (adapters/sources/_layout.py). Whitespace may be changed, members not: re-paste the
body to change it. The one value that cannot be read is one containing the text that separates
its member from the next (`", "level": "` before `level`, say): such a body is refused as
ambiguous, never misread, and kept whole as a rejected webhook. `message` and `instance`, the
free text, come last, where nothing but their own separator can confuse them.

Other bodies:

- Without a `layout` member the body is read as strict JSON: senders or relays that escape their
  values, bodies with more properties or a `title` and `note`, and `{"alerts": [...]}` batches.
  The connector's own tokens (`##HOST##` …) are still JSON strings then, so they must not need
  escaping.
- The body shipped before layouts (the same members in another order, `message` in the
  middle, no marker) is read as JSON when it is valid JSON, else by its layout, so existing
  deployments stop losing alerts with a quote or a backslash. Valid JSON still misreads
  `\t`-like sequences (`C:\temp` arrives with a tab): re-paste `bodies/logicmonitor.json`.
- LogicMonitor's form data (key-value pairs) instead of raw data: sent as
  `application/x-www-form-urlencoded`, each value percent-encoded, so any value arrives as it
  was. Use the keys of `bodies/logicmonitor_form.txt` (`properties.<name>` for a property).
  Not confirmed from LogicMonitor's documentation: that its form data is sent url-encoded with
  that content type (rather than, say, multipart); a multipart body is refused with 415.

How the body becomes an alert:

- Identity: `##ALERTID##` (LMD…, LMS…) is *not* unique per alert session: LogicMonitor gives the
  same id to every alert of one resource, module, instance and datapoint. The fingerprint is
  therefore the id plus the session's start (`##STARTEPOCH##`, else `##START##`):
  `LMD4711@1795779000`. A new session after a clear is a new alert with its own ticket; the ack,
  update and clear of a session land on that session's alert.
- `##ALERTSTATUS##` (active, ack, clear, update, test): active → active; ack → acknowledged
  (`##ADMIN##` as who, `note` as the comment); clear → cleared; update (the alert's level or
  escalation stage changed) → a repeat of the active alert, which the connector notes on the open
  ticket at most once per repeat interval; test → active, titled "[test] …", property
  `logicmonitor.test` = true.
- `##LEVEL##`: warn/warning → warning, error → error, critical → critical; absent → warning.
  The level word is kept as the alert's raw severity, which the integration's
  `severity_maps["logicmonitor"]` may map otherwise (say warn → info).
- Source time: an active event happened at the session's start, so LogicMonitor's retries and
  re-sends of it are duplicates; ack, update and clear happened at `##DATE##` (when LogicMonitor
  sent them), so each distinct update is a new event and a re-send of the same one is not.
  Without a readable `##DATE##` an update counts as a repeat of the active event (recorded, no
  delivery). `##START##` and `##DATE##` are in the portal's time zone ("2019-05-02 14:21:40 PDT");
  common abbreviations are read (CST as US Central), others leave the time unknown, so prefer
  `##STARTEPOCH##` or set the portal's zone to UTC.
- title: `title` if given, else "<datasource> <datapoint> on <host>"; message: `##MESSAGE##`;
  monitor: `##DATASOURCE##`; host, tenant as above. Properties: `instance`, `datapoint`, `value`,
  `threshold`, `alert.type`, `logicmonitor.alert_id`, `logicmonitor.group`, `logicmonitor.url`,
  `logicmonitor.start`, `logicmonitor.level`, and every entry of `properties` that has a value.
- A token LogicMonitor cannot fill stays in the body literally (`"##HOST##"`); such values are
  empty. In a JSON body every value may be a JSON string or number.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from marshmallow import ValidationError, validate

from adapters.sources._common import (
    ID_LIMIT,
    NAME_LIMIT,
    BatchSource,
    Instant,
    SourceSchema,
    Text,
    filled,
    fitted,
    from_text,
    items_of,
    judge_each,
    known_word,
    loading,
    present,
    properties_field,
    severity_of,
    shipped_body,
)
from adapters.sources._layout import (
    Layout,
    media_type,
    read_form,
    read_raw_body,
    without_marker,
)
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, SenderSnippet, Severity

#: A token LogicMonitor left unsubstituted, e.g. `##HOST##` or `##autotask.accountid##`: a token
#: with no value for this alert (a property the resource lacks, a datapoint an EventSource alert
#: has not) reaches the body as written.
UNSUBSTITUTED = re.compile(r"##[^#\s]{1,200}##")

#: ##ALERTSTATUS## values (LogicMonitor, "Tokens Available in LogicModule Alert Messages":
#: "Reports whether the alert is active, clear, ack, update, or test").
STATUSES = {
    "active": AlertStatus.ACTIVE,
    "ack": AlertStatus.ACKNOWLEDGED,
    "clear": AlertStatus.CLEARED,
    "update": AlertStatus.ACTIVE,
    "test": AlertStatus.ACTIVE,
}

#: ##LEVEL##: LogicMonitor's three alert levels; "warning" too, as some templates spell it.
LEVELS = {
    "warn": Severity.WARNING,
    "warning": Severity.WARNING,
    "error": Severity.ERROR,
    "critical": Severity.CRITICAL,
}

#: Time-zone abbreviations LogicMonitor writes after ##START## and ##DATE##. Why: "tokens that
#: reference dates and/or times are based on the time zone configured for the global LogicMonitor
#: account" (tokens page), written as an abbreviation ("2019-05-02 14:21:40 PDT"). An abbreviation
#: not listed (IST: India, Ireland or Israel?) leaves the time unknown; CST is US Central.
ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "BST": 1,
    "WET": 0,
    "WEST": 1,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
}
_PORTAL_TIME = re.compile(
    r"(?P<moment>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?)"
    r"\s+(?P<zone>[A-Za-z]{1,5}|[+-]\d{2}:?\d{2})"
)


def portal_time(text: str) -> datetime | None:
    """A ##START## / ##DATE## value as UTC; None when its zone cannot be told for certain."""
    text = text.strip()
    if not text or UNSUBSTITUTED.fullmatch(text):
        return None
    match = _PORTAL_TIME.fullmatch(text)
    if match is None:
        try:
            return from_text(text)
        except ValidationError:
            return None
    zone = match["zone"]
    if zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    elif zone.upper() in ZONES:
        offset = timedelta(hours=ZONES[zone.upper()])
    else:
        return None
    try:
        naive = datetime.fromisoformat(match["moment"].replace(" ", "T"))
        return naive.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


#: The shipped body (bodies/logicmonitor.json), free text last. Why a layout and not JSON: the
#: tokens are substituted raw (see the module docstring); this version of it is named by the
#: body's leading `"layout"` member.
LAYOUT = Layout(
    "logicmonitor-raw-1",
    [
        ("alert_id",),
        ("status",),
        ("level",),
        ("alert_type",),
        ("start_epoch",),
        ("start",),
        ("date",),
        ("tenant",),
        ("properties", "autotask.accountid"),
        ("admin",),
        ("url",),
        ("group",),
        ("host",),
        ("datasource",),
        ("datapoint",),
        ("value",),
        ("threshold",),
        ("instance",),
        ("message",),
    ],
    marker="logicmonitor-raw-1",
)
#: The body shipped before layout markers, read by its order only when it is not valid JSON.
SHIPPED_BEFORE_LAYOUTS = Layout(
    "LogicMonitor body shipped before layouts",
    [
        ("alert_id",),
        ("status",),
        ("level",),
        ("alert_type",),
        ("host",),
        ("datasource",),
        ("instance",),
        ("datapoint",),
        ("value",),
        ("threshold",),
        ("start",),
        ("start_epoch",),
        ("date",),
        ("message",),
        ("admin",),
        ("group",),
        ("url",),
        ("tenant",),
        ("properties", "autotask.accountid"),
    ],
    marker=None,
)
FORM = "application/x-www-form-urlencoded"


class LogicMonitorAlertSchema(SourceSchema):
    """The recommended LogicMonitor body. Unknown fields are ignored."""

    words = ("status", "level")

    alert_id = Text(required=True, blank=UNSUBSTITUTED, validate=filled(ID_LIMIT))
    status = Text(
        required=True,
        blank=UNSUBSTITUTED,
        validate=validate.OneOf(sorted(STATUSES), error="Must be one of: {choices}."),
    )
    level = Text(load_default="", blank=UNSUBSTITUTED, validate=known_word(LEVELS))
    alert_type = Text(load_default="", blank=UNSUBSTITUTED)
    host = Text(load_default="", blank=UNSUBSTITUTED)
    datasource = Text(load_default="", blank=UNSUBSTITUTED)
    instance = Text(load_default="", blank=UNSUBSTITUTED)
    datapoint = Text(load_default="", blank=UNSUBSTITUTED)
    value = Text(load_default="", blank=UNSUBSTITUTED)
    threshold = Text(load_default="", blank=UNSUBSTITUTED)
    start = Text(load_default="", blank=UNSUBSTITUTED, validate=validate.Length(max=100))
    start_epoch = Instant(load_default=None, blank=UNSUBSTITUTED)
    date = Text(load_default="", blank=UNSUBSTITUTED, validate=validate.Length(max=100))
    message = Text(load_default="", blank=UNSUBSTITUTED)
    admin = Text(load_default="", blank=UNSUBSTITUTED)
    group = Text(load_default="", blank=UNSUBSTITUTED)
    url = Text(load_default="", blank=UNSUBSTITUTED)
    tenant = Text(load_default="", blank=UNSUBSTITUTED)
    title = Text(load_default="", blank=UNSUBSTITUTED)
    note = Text(load_default="", blank=UNSUBSTITUTED)
    properties = properties_field(blank=UNSUBSTITUTED)


#: Built once: a marshmallow schema is reusable, and building one per webhook cost more than
#: loading the alert with it.
_ALERT_SCHEMA = LogicMonitorAlertSchema()


class LogicMonitorSource(BatchSource):
    """Parses LogicMonitor custom HTTP deliveries into IncomingAlerts."""

    slug = "logicmonitor"
    display_name = "LogicMonitor"

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """The Custom HTTP Delivery integration: raw JSON body, or the same as form data."""
        where = (
            "LogicMonitor › Settings › Integrations › Add › Custom HTTP Delivery: HTTP POST, this"
            " URL, header Authorization: Bearer <webhook token>; Alert Data: {}. Use the same"
            " body for Active, Acknowledged and Cleared (and Include an ID: off)"
        )
        return [
            SenderSnippet(
                title="LogicMonitor, raw data",
                where=f"{where.format('Raw, JSON')}; URL: {hook_url}",
                text=shipped_body("logicmonitor.json"),
                content_type="application/json",
            ),
            SenderSnippet(
                title="LogicMonitor, form data",
                where=f"{where.format('Form data, one key=value per line')}; URL: {hook_url}",
                text=shipped_body("logicmonitor_form.txt"),
                content_type=FORM,
            ),
        ]

    #: Raw data arrives with whatever type the admin chose (often JSON, sometimes text); form
    #: data url-encoded.
    content_types = ("application/json", "text/plain", FORM)

    def decode_body(self, raw: bytes, content_type: str) -> Any:
        """A raw body by its layout (else JSON, else the older layout), or form data."""
        kind, charset = media_type(content_type)
        if kind == FORM:
            return read_form(raw, charset, nested=("properties",))
        return read_raw_body(raw, charset, [LAYOUT], SHIPPED_BEFORE_LAYOUTS)

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge one delivery (or {"alerts": [...]}) alert by alert; bad fields are named."""
        items, prefix = items_of(payload, "alerts", "the LogicMonitor body (see the docs)")
        read = loading(_ALERT_SCHEMA, self._normalize)
        return judge_each(items, prefix, read, without_marker)

    def _normalize(self, data: dict[str, Any]) -> IncomingAlert:
        word: str = data["status"]
        status = STATUSES[word]
        started: datetime | None = data["start_epoch"] or portal_time(data["start"])
        if started is not None:
            session = str(int(started.timestamp()))
        else:
            session = data["start"].strip()
        # Why: ##ALERTID## "is not unique per alert session; it is applied to all alerts triggered
        # by a particular resource/website, LogicModule, instance, and datapoint combination"
        # (LogicMonitor, "Tokens Available in LogicModule Alert Messages"): the session's start
        # tells one session from the next.
        fingerprint = _fingerprint(data["alert_id"], session)
        # An active event happened when the session started; the others when LogicMonitor sent
        # them (##DATE##), so each update, ack or clear is its own event and re-sends repeat it.
        occurred = started if word in ("active", "test") else portal_time(data["date"])
        title = data["title"] or _compose_title(data)
        if word == "test":
            title = f"[test] {title}"
        # A property left as a literal `##token##` is empty: no property.
        properties = present(
            [
                *data["properties"].items(),
                ("instance", data["instance"]),
                ("datapoint", data["datapoint"]),
                ("value", data["value"]),
                ("threshold", data["threshold"]),
                ("alert.type", data["alert_type"]),
                ("logicmonitor.alert_id", data["alert_id"]),
                ("logicmonitor.group", data["group"]),
                ("logicmonitor.url", data["url"]),
                ("logicmonitor.start", data["start"]),
                ("logicmonitor.level", data["level"]),
                ("logicmonitor.test", "true" if word == "test" else ""),
            ]
        )
        acknowledged = status is AlertStatus.ACKNOWLEDGED
        return fitted(
            IncomingAlert(
                source=self.slug,
                fingerprint=fingerprint,
                status=status,
                severity=severity_of(data["level"], LEVELS),
                title=title,
                message=data["message"],
                host=data["host"],
                tenant=data["tenant"],
                monitor=data["datasource"],
                properties=properties,
                started_at=started,
                occurred_at=occurred,
                note=data["note"] if acknowledged else "",
                actor=data["admin"] if acknowledged else "",
                raw_severity=data["level"],
            )
        )


def _fingerprint(alert_id: str, session: str) -> str:
    """The alert id plus its session's start, within the alert table's 255 characters."""
    if not session:
        return alert_id
    if len(alert_id) + 1 + len(session) > NAME_LIMIT:
        session = hashlib.sha256(session.encode()).hexdigest()[:16]
    return f"{alert_id}@{session}"


def _compose_title(data: dict[str, Any]) -> str:
    """The title "<datasource> <datapoint> on <host>", from whichever parts LogicMonitor filled."""
    what = " ".join(part for part in (data["datasource"], data["datapoint"]) if part)
    if what and data["host"]:
        return f"{what} on {data['host']}"
    return what or data["host"] or f"LogicMonitor alert {data['alert_id']}"
