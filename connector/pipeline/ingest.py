"""Ingest: in ONE transaction, upsert each alert, append its event, enqueue its delivery."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from connector.domain import AlertStatus, IncomingAlert
from connector.integrations.settings import IntegrationSettings
from connector.payloads.text import truncate
from connector.persistence.db import insert_for
from connector.persistence.models import Alert, AlertEvent, Integration, TenantMapping
from connector.pipeline.outbox import NewDelivery, enqueue
from connector.pipeline.routing import TenantRoute, map_severity, route_company

QUEUED = "queued"
DUPLICATE = "duplicate"
STALE = "stale"
#: The integration is inactive: the event is kept and its delivery held, not sent.
HELD = (
    "held: the integration is inactive; its delivery is kept and sent only if the integration"
    " is activated with the held deliveries within 48 hours"
)
#: AlertEvent.disposition is String(300); a drop reason quotes sender text (tenant, property).
DISPOSITION_LIMIT = 300


@dataclass(frozen=True)
class Accepted:
    """What happened to one alert of a webhook."""

    event_id: int
    alert_id: int
    disposition: str
    #: What the admin should know about how the event was handled (also on the event).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Upserted:
    """The alert row after an event's upsert."""

    alert_id: int
    #: The clear cycle this event belongs to.
    cycle: int
    #: The newest sender time applied to the alert, this event's included.
    newest: datetime | None
    #: The alert's status after the upsert (a stale event leaves it as it was).
    status: str


def order_time(alert: IncomingAlert, cleared: bool) -> datetime | None:
    """When the event happened by the sender's clock, which orders the alert's events.

    The event's own time. An active event without one, for an alert that is cleared, happened
    no later than the alert's start: one that started before the clear belongs to the cleared
    episode (a late copy), one that started after it is a new firing. Otherwise an event without
    a time of its own has none (an update whose time could not be read, a clear that names only
    the start): it is applied in the order it arrives. _upsert_statement decides the same in SQL.
    """
    if alert.occurred_at is not None:
        return alert.occurred_at
    return alert.started_at if cleared and alert.status is AlertStatus.ACTIVE else None


def tenant_routes(session: Session, integration_id: int) -> dict[str, TenantRoute]:
    """The integration's tenant mappings, by tenant."""
    rows = session.scalars(
        select(TenantMapping).where(TenantMapping.integration_id == integration_id)
    )
    return {row.tenant: TenantRoute(row.company_id, row.enabled) for row in rows}


def ingest(
    session: Session,
    integration_id: int,
    settings: IntegrationSettings,
    alerts: Sequence[IncomingAlert],
    *,
    now: datetime,
    max_delivery_age: timedelta,
    held: bool | None = None,
    routes: Mapping[str, TenantRoute] | None = None,
) -> list[Accepted]:
    """Record every alert and enqueue its delivery; the caller owns (and commits) the transaction.

    Each alert's severity first goes through the integration's severity map for its source, so
    the alert, its event and the ticket all carry the mapped severity.

    A repeat of an event already recorded (same alert, status and source timestamp) is recorded
    again as a duplicate but gets no second delivery: the UNIQUE (alert, dedupe key) on deliveries
    makes this hold under concurrent posts too.

    An event older, by the sender's clock, than the newest event already applied to its alert is
    stale: recorded with the reason, it changes neither the alert nor the ticket (a clear that
    overtook its alert's active, a late acknowledgement of a cleared alert).

    An inactive integration's events are recorded as usual, but their deliveries are held
    (disposition "held: …"): no worker sends them until the integration is activated.

    `held` and `routes`, when the caller already read them in this transaction (the webhook's
    path: `is_active` and a cached tenant map), are not read again.

    The writes are Core statements on the session's connection (no ORM unit of work): the
    path every webhook takes. One upsert per alert, then one insert of all the events and one
    of all the deliveries.
    """
    if held is None:
        held = not is_active(session, integration_id)
    if routes is None:
        routes = tenant_routes(session, integration_id)
    connection = session.connection()
    dialect = connection.dialect.name
    events: list[dict[str, Any]] = []
    warned: list[tuple[str, ...]] = []
    # Each alert's upsert in turn (a later alert of the webhook may be the same alert, and its
    # cycle and staleness depend on the one before); the events and deliveries then in one
    # statement each.
    for received in alerts:
        alert = map_severity(received, settings)
        row = _upsert_alert(connection, dialect, integration_id, alert, now)
        route = route_company(alert, settings, routes)
        stale = _stale_reason(alert, row)
        if stale:
            disposition = truncate(f"{STALE}: {stale}", DISPOSITION_LIMIT)
        elif route.dropped:
            disposition = truncate(f"dropped: {route.dropped}", DISPOSITION_LIMIT)
        else:
            disposition = HELD if held else QUEUED
        warnings = (route.warning,) if route.warning else ()
        warned.append(warnings)
        events.append(
            {
                "alert_id": row.alert_id,
                "status": alert.status.value,
                "severity": alert.severity.value,
                "dedupe_key": dedupe_key(alert, row.cycle),
                "occurred_at": alert.occurred_at,
                "received_at": now,
                "disposition": disposition,
                "payload": alert_to_json(alert),
                "warnings": list(warnings) or None,
            }
        )
    if not events:
        return []
    event_ids = list(connection.execute(_EVENT_INSERT, events).scalars())
    wanted = [
        NewDelivery(event["alert_id"], event_id, event["dedupe_key"])
        for event, event_id in zip(events, event_ids, strict=True)
        if event["disposition"] in (HELD, QUEUED)
    ]
    new = enqueue(session, integration_id, wanted, now, max_delivery_age, held=held)
    # Repeats: their delivery existed already (rare, so their events are corrected afterwards
    # rather than every event waiting for the deliveries' insert).
    repeats = {delivery.event_id for delivery in wanted if delivery.event_id not in new}
    if repeats:
        connection.execute(
            update(_EVENTS).where(_EVENTS.c.id.in_(repeats)).values(disposition=DUPLICATE)
        )
    return [
        Accepted(
            event_id,
            event["alert_id"],
            DUPLICATE if event_id in repeats else event["disposition"],
            warnings,
        )
        for event, event_id, warnings in zip(events, event_ids, warned, strict=True)
    ]


#: The event table, written with Core statements (see `ingest`).
_EVENTS = cast(Table, AlertEvent.__table__)
#: Many rows in one statement, their ids returned in the order the rows were given.
_EVENT_INSERT = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)


def is_active(session: Session, integration_id: int) -> bool:
    """Whether the integration delivers now, read under a share lock (PostgreSQL).

    The lock holds until the caller commits, so switching the integration on or off (an UPDATE
    of its row) waits for this ingest and then sees its deliveries, held or pending: none is
    left held by an activation it raced with. SQLite serializes writers anyway.
    """
    active = session.scalar(
        select(Integration.active)
        .where(Integration.id == integration_id)
        .with_for_update(read=True)
    )
    return active is not False


def _stale_reason(alert: IncomingAlert, row: _Upserted) -> str:
    """Why the event is stale, or "" when it is not (it is the newest, or has no time)."""
    # A stale event leaves the alert's status as it was, so the status after the upsert is the
    # one the event was judged against; an event that is not stale may have changed it, but
    # then (being active) it did not change it to cleared.
    happened = order_time(alert, cleared=row.status == AlertStatus.CLEARED.value)
    if happened is None or row.newest is None or happened >= row.newest:
        return ""
    return (
        f"this {alert.status.value} event happened at {happened.isoformat()}, before an event"
        f" of {row.newest.isoformat()} already applied (the alert is {row.status}); it changes"
        " nothing"
    )


def dedupe_key(alert: IncomingAlert, cycle: int) -> str:
    """Identify an event: status + the source's timestamp, or the alert's clear cycle if none.

    An active event at another severity is another event (the severity changed), even when the
    sender stamps it with the alert's unchanged start.
    """
    stamp = alert.occurred_at or alert.started_at
    moment = stamp.isoformat() if stamp else f"cycle-{cycle}"
    if alert.status in (AlertStatus.ACKNOWLEDGED, AlertStatus.ESCALATED):
        moment += f"|{alert.actor}|{alert.note}"
    elif alert.status is AlertStatus.ACTIVE:
        moment += f"|{alert.severity.value}"
    digest = hashlib.sha256(moment.encode()).hexdigest()[:40]
    return f"{alert.status.value}:{digest}"


_ALERTS = cast(Table, Alert.__table__)
_ALERT_FACTS = ("id", "cycle", "last_occurred_at", "status")


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """The alert upsert, built once per dialect: a webhook of 500 alerts runs it 500 times, and
    building it (not running it) was most of the time.

    A stale event updates nothing here (the DO UPDATE's WHERE), so the statement returns no
    row; `_touch_statement` then records when it arrived. Stating staleness once, not in every
    column's value, keeps the SQL under psycopg's 4 KiB cache of converted queries: at 6.6 KiB
    it was converted again on every execution, an eighth of a webhook's time on PostgreSQL.
    """
    statement = insert_for(dialect, _ALERTS)
    excluded = statement.excluded
    # In ON CONFLICT … DO UPDATE, Alert.<column> is the stored row and `excluded` the new event.
    # The event's time as order_time() has it: its own, else (an active event for a cleared
    # alert) the alert's start.
    newest = Alert.last_occurred_at
    late_copy = (Alert.status == AlertStatus.CLEARED.value) & (
        excluded.status == AlertStatus.ACTIVE.value
    )
    happened = func.coalesce(
        excluded.last_occurred_at, case((late_copy, excluded.started_at), else_=None)
    )
    stale = happened.is_not(None) & newest.is_not(None) & (happened < newest)
    becomes_cleared = (excluded.status == AlertStatus.CLEARED.value) & (
        Alert.status != AlertStatus.CLEARED.value
    )

    def kept_unless_given(column: str) -> Any:
        # An acknowledgement or clear often carries only the id: keep what earlier events said.
        new = getattr(excluded, column)
        return case((new == "", getattr(Alert, column)), else_=new)

    return statement.on_conflict_do_update(
        index_elements=[Alert.integration_id, Alert.source, Alert.fingerprint],
        set_={
            "status": excluded.status,
            "severity": excluded.severity,
            "title": excluded.title,
            "message": kept_unless_given("message"),
            "host": kept_unless_given("host"),
            "tenant": kept_unless_given("tenant"),
            "monitor": kept_unless_given("monitor"),
            "properties": excluded.properties,
            "started_at": func.coalesce(excluded.started_at, Alert.started_at),
            "cycle": Alert.cycle + case((becomes_cleared, 1), else_=0),
            # Not stale: the event's time is the newest, or it has none.
            "last_occurred_at": func.coalesce(happened, newest),
            "last_event_at": excluded.last_event_at,
        },
        # A stale event is recorded, but the alert keeps what the newer events said.
        where=~stale,
    ).returning(*(_ALERTS.c[name] for name in _ALERT_FACTS))


#: A stale event's only change to its alert: when the last event arrived.
_TOUCH = (
    update(_ALERTS)
    .where(
        _ALERTS.c.integration_id == bindparam("of_integration"),
        _ALERTS.c.source == bindparam("of_source"),
        _ALERTS.c.fingerprint == bindparam("of_fingerprint"),
    )
    .values(last_event_at=bindparam("arrived_at"))
    .returning(*(_ALERTS.c[name] for name in _ALERT_FACTS))
)


def _upsert_alert(
    connection: Connection, dialect: str, integration_id: int, alert: IncomingAlert, now: datetime
) -> _Upserted:
    """Insert or update the alert (a stale event changes nothing of it); return the row's facts."""
    values = {
        "integration_id": integration_id,
        "fingerprint": alert.fingerprint,
        "source": alert.source,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "message": alert.message,
        "host": alert.host,
        "tenant": alert.tenant,
        "monitor": alert.monitor,
        "properties": dict(alert.properties),
        "started_at": alert.started_at,
        "cycle": 1 if alert.status is AlertStatus.CLEARED else 0,
        "last_occurred_at": alert.occurred_at,
        "last_event_at": now,
        "created_at": now,
    }
    row = connection.execute(_upsert_statement(dialect), values).first()
    if row is None:  # stale: the alert stays as it was
        row = connection.execute(
            _TOUCH,
            {
                "of_integration": integration_id,
                "of_source": alert.source,
                "of_fingerprint": alert.fingerprint,
                "arrived_at": now,
            },
        ).one()
    alert_id, cycle, newest, status = row
    # A clear closes the cycle it counted; every other status belongs to the current one.
    if alert.status is AlertStatus.CLEARED:
        cycle -= 1
    return _Upserted(int(alert_id), int(cycle), newest, str(status))


def alert_to_json(alert: IncomingAlert) -> dict[str, Any]:
    """The normalized alert as stored on its event (and read back by the worker)."""
    return {
        "source": alert.source,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "message": alert.message,
        "host": alert.host,
        "tenant": alert.tenant,
        "monitor": alert.monitor,
        "properties": dict(alert.properties),
        "started_at": alert.started_at.isoformat() if alert.started_at else None,
        "occurred_at": alert.occurred_at.isoformat() if alert.occurred_at else None,
        "note": alert.note,
        "actor": alert.actor,
        "raw_severity": alert.raw_severity,
    }


def alert_from_json(data: dict[str, Any]) -> IncomingAlert:
    """Inverse of alert_to_json."""
    from connector.domain import Severity

    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return IncomingAlert(
        source=data["source"],
        fingerprint=data["fingerprint"],
        status=AlertStatus(data["status"]),
        severity=Severity(data["severity"]),
        title=data["title"],
        message=data.get("message", ""),
        host=data.get("host", ""),
        tenant=data.get("tenant", ""),
        monitor=data.get("monitor", ""),
        properties=data.get("properties") or {},
        started_at=moment(data.get("started_at")),
        occurred_at=moment(data.get("occurred_at")),
        note=data.get("note", ""),
        actor=data.get("actor", ""),
        # Events stored before severity maps existed have no raw word.
        raw_severity=data.get("raw_severity", ""),
    )
