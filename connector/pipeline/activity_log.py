"""The integration log: every stored call to Autotask, newest first, filtered; rows shared with
the hourly report.

Each call is an ApiCall row (pipeline/activity.py): when, method, entity, HTTP status, records,
execution time, the API user and the error the target adapter recorded (secrets redacted there),
and the delivery it was made for, and the request as sent and the answer (headers and bodies,
redacted and cut by the adapter; none for calls stored before they were kept). The admin's
integration log pages through them by id (`recent_calls`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, not_, select
from sqlalchemy.orm import Session

from connector.persistence.models import ApiCall, Delivery, Integration, TicketLink


@dataclass(frozen=True)
class CallRow:
    """One stored call to Autotask, with its integration and the alert it was made for."""

    id: int
    at: datetime
    integration_id: int
    integration: str
    api_user: str
    method: str
    entity: str
    records: int | None
    http_status: int | None
    execution_ms: float
    #: Why the call failed, as the target adapter recorded it (secrets redacted there).
    error: str | None
    delivery_id: int | None
    alert_id: int | None
    #: Made after `threshold` calls of its hour (None where not worked out: the log).
    threshold_exceeded: bool | None = None


def calls_select(*extra: ColumnElement[Any]) -> Select[Any]:
    """Calls with their integration's name and user and their delivery's alert, and `extra`."""
    return (
        select(ApiCall, Integration.name, Integration.username, Delivery.alert_id, *extra)
        .join(Integration, Integration.id == ApiCall.integration_id)
        .outerjoin(Delivery, Delivery.id == ApiCall.delivery_id)
    )


def call_row(values: Any, threshold_exceeded: bool | None = None) -> CallRow:
    """A row of `calls_select()` as a CallRow."""
    call, name, username, alert_id = values[:4]
    return CallRow(
        id=call.id,
        at=call.at,
        integration_id=call.integration_id,
        integration=name,
        # The user the call was made as (what Autotask counts); rows that name none, the current.
        api_user=call.api_user or username,
        method=call.method,
        entity=call.entity,
        records=call.records,
        http_status=call.http_status,
        execution_ms=call.execution_ms,
        error=call.error,
        delivery_id=call.delivery_id,
        alert_id=alert_id,
        threshold_exceeded=threshold_exceeded,
    )


def call_json(row: CallRow, utc_offset: timedelta = timedelta(0)) -> dict[str, Any]:
    """A call as JSON, its time at `utc_offset`; `threshold_exceeded` only where worked out."""
    body: dict[str, Any] = {
        "id": row.id,
        "at": row.at.astimezone(timezone(utc_offset)).isoformat(),
        "integration_id": row.integration_id,
        "integration": row.integration,
        "api_user": row.api_user,
        "method": row.method,
        "entity": row.entity,
        "records": row.records,
        "http_status": row.http_status,
        "execution_ms": row.execution_ms,
        "error": row.error,
        "delivery_id": row.delivery_id,
        "alert_id": row.alert_id,
    }
    if row.threshold_exceeded is not None:
        body["threshold_exceeded"] = row.threshold_exceeded
    return body


#: A `status` filter: an HTTP status class, or "error" for calls that got no answer at all.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
NO_ANSWER = "error"
#: `status` filters by outcome: answered 2xx without an error, and everything else.
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class CallFilter:
    """What the log is narrowed to; every filter given must hold."""

    integration_id: int | None = None
    #: Calls made for the deliveries of this alert.
    alert_id: int | None = None
    #: Calls made for the deliveries of the alert that has (or had) this ticket: a call names no
    #: ticket, so an alert's calls for each of its tickets are found by any of them.
    ticket_id: int | None = None
    #: An HTTP status (404), a class of them ("4xx", see STATUS_CLASSES), "error" (no answer:
    #: timeout, connection failure), "ok" (a 2xx and no error) or "failed" (any other call).
    status: int | str | None = None
    #: Calls made for the deliveries of the alert that has (or had) the ticket of this number.
    ticket_number: str | None = None
    #: From this time on (inclusive) and before this one.
    since: datetime | None = None
    until: datetime | None = None


def _status_clause(status: int | str) -> ColumnElement[bool]:
    if isinstance(status, int):
        return ApiCall.http_status == status
    answered_ok = and_(ApiCall.http_status.between(200, 299), ApiCall.error.is_(None))
    if status == OK:
        return answered_ok
    if status == FAILED:
        return not_(answered_ok)
    if status == NO_ANSWER:
        return ApiCall.http_status.is_(None)
    if status not in STATUS_CLASSES:
        raise ValueError(f"unknown status filter {status!r}")
    low = int(status[0]) * 100
    return ApiCall.http_status.between(low, low + 99)


def _narrowed(query: Select[Any], filters: CallFilter) -> Select[Any]:
    """`query` (of `calls_select`) narrowed by every filter given."""
    if filters.integration_id is not None:
        query = query.where(ApiCall.integration_id == filters.integration_id)
    if filters.alert_id is not None:
        query = query.where(Delivery.alert_id == filters.alert_id)
    if filters.ticket_id is not None:
        with_ticket = select(TicketLink.alert_id).where(TicketLink.ticket_id == filters.ticket_id)
        query = query.where(Delivery.alert_id.in_(with_ticket))
    if filters.ticket_number is not None:
        numbered = select(TicketLink.alert_id).where(
            TicketLink.ticket_number == filters.ticket_number
        )
        query = query.where(Delivery.alert_id.in_(numbered))
    if filters.status is not None:
        query = query.where(_status_clause(filters.status))
    if filters.since is not None:
        query = query.where(ApiCall.at >= filters.since)
    if filters.until is not None:
        query = query.where(ApiCall.at < filters.until)
    return query


def call_log(
    session: Session, filters: CallFilter, *, limit: int = 100, offset: int = 0
) -> list[CallRow]:
    """The calls that pass `filters`, newest first (by time, then by id), one page."""
    query = _narrowed(calls_select(), filters)
    query = query.order_by(ApiCall.at.desc(), ApiCall.id.desc()).limit(limit).offset(offset)
    return [call_row(row) for row in session.execute(query)]


@dataclass(frozen=True)
class LoggedCall:
    """A call of the integration log: its row, the request and answer, its delivery's attempts."""

    row: CallRow
    #: {"url", "headers", "body"} as sent and {"status", "headers", "body"} as answered; None
    #: when not known (no answer, or a call stored before they were kept).
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    #: How many times the delivery it was made for was tried so far (None: no delivery).
    delivery_attempts: int | None


def recent_calls(
    session: Session, filters: CallFilter, *, before_id: int | None = None, limit: int = 50
) -> list[LoggedCall]:
    """The calls that pass `filters`, newest (highest id) first, from below `before_id`."""
    query = _narrowed(calls_select(Delivery.attempts.expression), filters)
    if before_id is not None:
        query = query.where(ApiCall.id < before_id)
    query = query.order_by(ApiCall.id.desc()).limit(limit)
    return [
        LoggedCall(
            row=call_row(values),
            request=values[0].request,
            response=values[0].response,
            delivery_attempts=values[4],
        )
        for values in session.execute(query)
    ]
