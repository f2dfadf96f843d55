"""The ticket's text from an alert: its description, its start, and cutting to a field's length."""

from __future__ import annotations

from datetime import datetime

from connector.domain import AlertStatus, IncomingAlert

#: What a cut text ends with, so a reader sees it was cut.
TRUNCATED = " … [truncated]"


def utf16_units(text: str) -> int:
    """The length Autotask measures: UTF-16 code units (an emoji counts 2).

    Autotask is .NET on SQL Server, whose string lengths count UTF-16 code units, not code
    points (autotask-api.md §14; inferred, unconfirmed): 255 characters with emoji can be too long.
    """
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-16 units (`utf16_units`) with a visible marker.

    The cut never splits a character (nor an emoji's surrogate pair).
    """
    if utf16_units(text) <= limit:
        return text
    budget = limit - utf16_units(TRUNCATED)
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            return text[:index] + TRUNCATED
    return text


def alert_start(alert: IncomingAlert) -> datetime | None:
    """When the alert started by the sender's clock: its start, else an active event's time."""
    if alert.started_at is not None:
        return alert.started_at
    return alert.occurred_at if alert.status is AlertStatus.ACTIVE else None


def describe_alert(
    alert: IncomingAlert, start: datetime | None, received_at: datetime | None = None
) -> str:
    """The ticket description: the alert's message, then host, monitor, severity, start, source.

    `start` is the alert's own start; when the sender gave none, the time the connector received
    the event is shown instead, labelled as such.
    """
    lines = [alert.message] if alert.message else []
    details = [
        ("Host", alert.host),
        ("Monitor", alert.monitor),
        ("Severity", alert.severity.value),
        ("Started", start.isoformat() if start is not None else ""),
        ("Received", received_at.isoformat() if start is None and received_at else ""),
        ("Source", alert.source),
    ]
    lines.extend(f"{name}: {value}" for name, value in details if value)
    return "\n".join(lines)
