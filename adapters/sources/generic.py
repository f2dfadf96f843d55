"""The generic JSON source: the connector's own reference shape for any monitoring system.

One alert, or {"alerts": [...]}:

    {"id": "disk-srv01", "status": "active", "severity": "error", "title": "Disk full on srv01",
     "message": "/var is 99% full", "host": "srv01", "tenant": "acme", "monitor": "disk",
     "properties": {"autotask.accountid": "29683414"}, "started_at": "2026-11-22T10:00:00Z",
     "occurred_at": "2026-11-22T10:00:05Z", "note": "…", "acknowledged_by": "jane"}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

from adapters.sources._common import (
    BatchSource,
    Scalar,
    SourceSchema,
    Text,
    items_of,
    judge_each,
    loading,
)
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, SenderSnippet, Severity

#: Status words accepted, including the firing/resolved of Alertmanager-like senders.
STATUS_WORDS = {
    "active": AlertStatus.ACTIVE,
    "firing": AlertStatus.ACTIVE,
    "acknowledged": AlertStatus.ACKNOWLEDGED,
    "ack": AlertStatus.ACKNOWLEDGED,
    "escalated": AlertStatus.ESCALATED,
    "cleared": AlertStatus.CLEARED,
    "resolved": AlertStatus.CLEARED,
}


class _Moment(fields.AwareDateTime):
    """An ISO 8601 timestamp in UTC (naive ones are taken as UTC).

    Stricter than _common.Instant, as the generic contract has always been: an empty string or
    an epoch number is refused, not read.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as e:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValidationError("Out of the range of dates.") from e


def _not_blank(text: str) -> bool:
    """A validator: text that is more than whitespace."""
    if not text.strip():
        # Found by fuzzing: " " was taken as an alert id, one fingerprint for every such alert.
        raise ValidationError("Must not be blank: the id tells one alert from another.")
    return True


class GenericAlertSchema(SourceSchema):
    """One generic alert. Unknown fields are ignored (senders add their own)."""

    words = ("status", "severity")

    id = Text(required=True, validate=[validate.Length(min=1, max=255), _not_blank])
    status = fields.String(
        required=True,
        validate=validate.OneOf(sorted(STATUS_WORDS), error="Must be one of: {choices}."),
    )
    #: Empty when absent (the alert is then a warning), so the raw word is only what was sent.
    severity = fields.String(
        load_default="",
        validate=validate.OneOf(
            [s.value for s in Severity] + [""],
            error=f"Must be one of: {', '.join(s.value for s in Severity)}.",
        ),
    )
    title = Text(required=True, validate=validate.Length(min=1, max=10_000))
    message = Text(load_default="", validate=validate.Length(max=100_000))
    host = Text(load_default="", validate=validate.Length(max=255))
    tenant = Text(load_default="", validate=validate.Length(max=255))
    monitor = Text(load_default="", validate=validate.Length(max=255))
    properties = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=255)),
        values=Scalar(),
        load_default=dict,
    )
    started_at = _Moment(load_default=None, default_timezone=UTC)
    occurred_at = _Moment(load_default=None, default_timezone=UTC)
    note = Text(load_default="", validate=validate.Length(max=32_000))
    acknowledged_by = Text(load_default="", validate=validate.Length(max=255))


#: Built once: a marshmallow schema is reusable, and building one per webhook cost more than
#: loading the alert with it.
_ALERT_SCHEMA = GenericAlertSchema()


class GenericSource(BatchSource):
    """Parses generic JSON webhooks into IncomingAlerts."""

    slug = "generic"
    display_name = "Generic JSON"

    def sender_setup(self, hook_url: str) -> list[SenderSnippet]:
        """What a sender that can POST JSON configures (see the module docstring for fields)."""
        example = (
            f"curl -X POST '{hook_url}' \\\n"
            "  -H 'Authorization: Bearer <webhook token>' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            """  -d '{"id": "disk-srv01", "status": "active", "severity": "error","""
            """ "title": "Disk full on srv01", "host": "srv01", "tenant": "fabrikam"}'"""
        )
        return [
            SenderSnippet(
                title="Any sender that can POST JSON",
                where="The sender's webhook settings: method POST, this URL, the Authorization"
                " header with a webhook token",
                text=example,
                content_type="application/json",
            )
        ]

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge one alert (or {"alerts": [...]}) alert by alert; bad fields are named."""
        items, prefix = items_of(payload, "alerts", 'one alert or {"alerts": [...]}')
        # Top-level field names only ("properties", not "properties.k.value"), as always.
        read = loading(_ALERT_SCHEMA, self._normalize, nested=False)
        return judge_each(items, prefix, read)

    def _normalize(self, data: dict[str, Any]) -> IncomingAlert:
        return IncomingAlert(
            source=self.slug,
            fingerprint=data["id"],
            status=STATUS_WORDS[data["status"]],
            severity=Severity(data["severity"] or Severity.WARNING),
            title=data["title"],
            message=data["message"],
            host=data["host"],
            tenant=data["tenant"],
            monitor=data["monitor"],
            properties=data["properties"],
            started_at=data["started_at"],  # _Moment gives UTC
            occurred_at=data["occurred_at"],
            note=data["note"],
            actor=data["acknowledged_by"],
            raw_severity=data["severity"],
        )
