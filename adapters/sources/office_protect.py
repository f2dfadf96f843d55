"""Office Protect-style Microsoft 365 security events (`POST /hooks/office_protect`).

Office Protect (Sherweb) monitors Microsoft 365 tenants and reports security events ("Sign-In
from Unauthorized Country", "Administrator Role Change", "Mail Forwarding Rule(s) to External
Destination Created", …), each with a timestamp, a description and the details it found (user,
country, IP address, user agent …). It publishes no webhook format of its own (its Autotask
integration is built in), so this is the connector's shape for such events, to be produced by a
relay (Power Automate, a mail parser, a script) or by any security tool alike:

    {
      "event_id": "b3f1c2e4-7d4a-4c55-9a0e-2f1d8c6b9e71",
      "event_type": "Sign-In from Unauthorized Country",
      "tenant": "fabrikam.onmicrosoft.com",
      "description": "henry@fabrikam.com signed in from France (FR).",
      "severity": "high",
      "time": "2026-11-22T09:41:07Z",
      "status": "new",
      "user": "henry@fabrikam.com",
      "url": "https://…/events/b3f1c2e4…",
      "details": {"Country": "France (FR)", "IP address": "203.0.113.54"},
      "properties": {"autotask.accountid": "29683415"}
    }

or `{"events": [...]}`. Required: `event_id`, `event_type`, `tenant`.

How an event becomes an alert:

- Identity: `event_id` (every security event is its own alert and ticket).
- status: new/active/open (the default) → active; ignored/resolved/closed/dismissed → cleared
  (Office Protect lets an event be ignored: that closes its ticket).
- title: "<event_type>: <user>" (or the event type alone); monitor: the event type, so that
  per-monitor ticket settings can route, say, "Administrator Role Change" differently; message:
  `description`; tenant: `tenant` (mapped to an Autotask company; a tenant switched off or not
  mapped gets no ticket, but the event is kept and visible, as with Office Protect's own
  integration); host: none.
- severity: critical → critical, high → error, medium → warning, low/informational/info → info
  (and the connector's own words); absent → warning. The word is kept as the alert's raw
  severity, which the integration's `severity_maps["office_protect"]` may map otherwise.
- Source time: `time`, so a re-sent event is a duplicate.
- Properties: `event_id`, `alert.type` ("security event"), `office_protect.user`,
  `office_protect.url`, every `details` entry as `detail.<name>`, and every `properties` entry.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from marshmallow import validate

from adapters.sources._common import (
    ID_LIMIT,
    NAME_LIMIT,
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
)
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, SenderSnippet, Severity

#: Why the "ignored" words close: Office Protect lets an event be ignored from the Report table or
#: the Autotask ticket ("How to create a rule to automatically ignore events"): it is settled.
STATUSES = {
    "new": AlertStatus.ACTIVE,
    "active": AlertStatus.ACTIVE,
    "open": AlertStatus.ACTIVE,
    "ignored": AlertStatus.CLEARED,
    "resolved": AlertStatus.CLEARED,
    "closed": AlertStatus.CLEARED,
    "dismissed": AlertStatus.CLEARED,
}

#: Security products grade events low/medium/high(/critical); the connector's words pass as is.
SEVERITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.ERROR,
    "error": Severity.ERROR,
    "medium": Severity.WARNING,
    "warning": Severity.WARNING,
    "low": Severity.INFO,
    "informational": Severity.INFO,
    "info": Severity.INFO,
}


class OfficeProtectEventSchema(SourceSchema):
    """One security event. Unknown fields are ignored."""

    words = ("status", "severity")

    event_id = Text(required=True, validate=filled(ID_LIMIT))
    event_type = Text(required=True, validate=filled(NAME_LIMIT))
    tenant = Text(required=True, validate=filled(NAME_LIMIT))
    description = Text(load_default="")
    severity = Text(load_default="", validate=known_word(SEVERITIES))
    time = Instant(load_default=None, epoch=False)
    status = Text(
        load_default="new",
        validate=validate.OneOf(sorted(STATUSES), error="Must be one of: {choices}."),
    )
    user = Text(load_default="")
    url = Text(load_default="")
    details = properties_field()
    properties = properties_field()


#: Built once: a marshmallow schema is reusable, and building one per webhook cost more than
#: loading the alert with it.
_ALERT_SCHEMA = OfficeProtectEventSchema()


class OfficeProtectSource(BatchSource):
    """Parses Office Protect-style security events into IncomingAlerts."""

    slug = "office_protect"
    display_name = "Office Protect"

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """What a relay (Power Automate, a mail parser, a script) posts for each event."""
        example = json.dumps(
            {
                "event_id": "<the event's id>",
                "event_type": "Sign-In from Unauthorized Country",
                "tenant": "fabrikam.onmicrosoft.com",
                "description": "<what happened>",
                "severity": "high",
                "time": "2026-11-22T09:41:07Z",
                "user": "henry@fabrikam.com",
            },
            indent=2,
        )
        return [
            SenderSnippet(
                title="Office Protect events through a relay",
                where=f"The relay's HTTP action: POST {hook_url}, header Authorization: Bearer"
                ' <webhook token>, one event (or {"events": [...]}) per request',
                text=example,
                content_type="application/json",
            )
        ]

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge one event (or {"events": [...]}) event by event; bad fields are named."""
        items, prefix = items_of(payload, "events", 'one security event or {"events": [...]}')
        return judge_each(items, prefix, loading(_ALERT_SCHEMA, self._normalize))

    def _normalize(self, data: dict[str, Any]) -> IncomingAlert:
        event_type = data["event_type"].strip()
        user = data["user"].strip()
        # Sent properties and details are kept even when empty (no placeholders to blank here).
        properties = {
            **data["properties"],
            **{f"detail.{name}": value for name, value in data["details"].items()},
            **present(
                [
                    ("event_id", data["event_id"]),
                    ("alert.type", "security event"),
                    ("office_protect.user", user),
                    ("office_protect.url", data["url"]),
                ]
            ),
        }
        occurred: datetime | None = data["time"]
        return fitted(
            IncomingAlert(
                source=self.slug,
                fingerprint=data["event_id"],
                status=STATUSES[data["status"]],
                severity=severity_of(data["severity"], SEVERITIES),
                title=f"{event_type}: {user}" if user else event_type,
                message=data["description"],
                tenant=data["tenant"].strip(),
                monitor=event_type,
                properties=properties,
                started_at=occurred,
                occurred_at=occurred,
                raw_severity=data["severity"],
            )
        )
