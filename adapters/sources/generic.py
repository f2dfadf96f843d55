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

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from adapters.sources._common import items_of, judge_each, storable
from connector.domain import AlertStatus, IncomingAlert, ParsedWebhook, Severity
from connector.errors import PayloadError

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


class _Scalar(fields.Field[str]):
    """A property value: string, number or boolean, kept as text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return storable(str(value))
        raise ValidationError("Must be a string, number or boolean.")


class _Text(fields.String):
    """A string that may also arrive as a number (alert ids often do)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return storable(super()._deserialize(value, attr, data, **kwargs))


class _Moment(fields.AwareDateTime):
    """An ISO 8601 timestamp in UTC (naive ones are taken as UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as e:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValidationError("Out of the range of dates.") from e


class GenericAlertSchema(Schema):
    """One generic alert. Unknown fields are ignored (senders add their own)."""

    class Meta:
        unknown = EXCLUDE

    id = _Text(required=True, validate=validate.Length(min=1, max=255))
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
    title = _Text(required=True, validate=validate.Length(min=1, max=10_000))
    message = _Text(load_default="", validate=validate.Length(max=100_000))
    host = _Text(load_default="", validate=validate.Length(max=255))
    tenant = _Text(load_default="", validate=validate.Length(max=255))
    monitor = _Text(load_default="", validate=validate.Length(max=255))
    properties = fields.Dict(
        keys=_Text(validate=validate.Length(min=1, max=255)),
        values=_Scalar(),
        load_default=dict,
    )
    started_at = _Moment(load_default=None, default_timezone=UTC)
    occurred_at = _Moment(load_default=None, default_timezone=UTC)
    note = _Text(load_default="", validate=validate.Length(max=32_000))
    acknowledged_by = _Text(load_default="", validate=validate.Length(max=255))

    @pre_load
    def lower_case_words(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("status", "severity"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].strip().lower()
        return data


class GenericSource:
    """Parses generic JSON webhooks into IncomingAlerts."""

    slug = "generic"
    display_name = "Generic JSON"

    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge one alert (or {"alerts": [...]}) alert by alert; bad fields are named."""
        items, prefix = items_of(payload, "alerts", 'one alert or {"alerts": [...]}')
        schema = GenericAlertSchema()

        def read(item: Any, where: str) -> IncomingAlert:
            if not isinstance(item, dict):
                raise PayloadError.naming({where or "_": ["Must be an object."]})
            try:
                data = schema.load(item)
            except ValidationError as e:
                # Top-level field names only ("properties", not "properties.k.value").
                messages = e.messages if isinstance(e.messages, dict) else {"_": e.messages}
                at = f"{where}." if where else ""
                raise PayloadError.naming({f"{at}{k}": v for k, v in messages.items()}) from e
            return self._normalize(data)

        return judge_each(items, prefix, read)

    def parse(self, payload: Any) -> list[IncomingAlert]:
        """All or nothing: every alert, or PayloadError naming every bad field of every item."""
        return self.parse_items(payload).all_or_nothing()

    def _normalize(self, data: dict[str, Any]) -> IncomingAlert:
        started: datetime | None = data["started_at"]
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
            started_at=started.astimezone(UTC) if started else None,
            occurred_at=data["occurred_at"].astimezone(UTC) if data["occurred_at"] else None,
            note=data["note"],
            actor=data["acknowledged_by"],
            raw_severity=data["severity"],
        )
