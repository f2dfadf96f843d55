"""Switching an integration off and on again, and what becomes of what it kept meanwhile.

An inactive integration keeps taking its alerts in (events and alerts are stored as usual), but
their deliveries are held (DeliveryState.HELD), and no worker claims them. Activating it offers
what Office Protect's backfill offers: deliver what was kept during the last 48 hours, or not.
Either way no held delivery stays behind: the ones not sent are finished as done with the
outcome "skipped" and the reason, visible with every other delivery, never silently dropped.

The admin form and the JSON API both call `deactivate`, `backfill_of` and `activate`; each takes
the caller's Session (the caller commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.orm import Session

from connector.domain import AlertStatus, TicketState
from connector.persistence.models import AlertEvent, Delivery, Integration, TicketLink
from connector.pipeline.outbox import DeliveryState

#: Held deliveries younger than this when the integration is activated may still be delivered.
BACKFILL_WINDOW = timedelta(hours=48)
#: Delivery.outcome of a held delivery that was not sent.
SKIPPED = "skipped"
#: Delivery.last_error of a held delivery finished without sending: why.
SKIPPED_DECLINED = (
    "skipped: held while the integration was inactive; it was activated without delivering"
    " what it kept"
)
SKIPPED_TOO_OLD = (
    "skipped: held while the integration was inactive, and older than 48 hours when it was"
    " activated"
)


@dataclass(frozen=True)
class Backfill:
    """What an integration kept while inactive, as its activation offers it."""

    #: Held deliveries of the last 48 hours: sent when the admin chooses the backfill.
    recent: int
    #: Tickets those would create: alerts with a held event other than a clear (an active,
    #: acknowledged or escalated alert gets a ticket) and no open ticket.
    tickets: int
    #: Held deliveries older than 48 hours: finished as skipped either way.
    older: int
    #: Where the 48 hours begin.
    since: datetime

    def to_json(self) -> dict[str, object]:
        """The counts as the JSON API answers them."""
        return {
            "held_last_48_hours": self.recent,
            "tickets_to_create": self.tickets,
            "held_older": self.older,
            "since": self.since.isoformat(),
        }


@dataclass(frozen=True)
class Activated:
    """What activating an integration did."""

    #: Held deliveries put back in the queue (the backfill).
    delivered: int
    #: Held deliveries finished as skipped (declined, or older than 48 hours).
    skipped: int


def _held(integration_id: int) -> ColumnElement[bool]:
    return and_(Delivery.integration_id == integration_id, Delivery.state == DeliveryState.HELD)


def deactivate(session: Session, integration: Integration, now: datetime) -> int:
    """Switch the integration off: from now on its deliveries are held; return how many of its
    pending ones were held too (one already being sent finishes)."""
    if integration.active:
        integration.active = False
        integration.deactivated_at = now
    session.flush()  # the row's UPDATE first: an ingest in flight is waited for (ingest.py)
    held = session.execute(
        update(Delivery)
        .where(
            Delivery.integration_id == integration.id,
            Delivery.state == DeliveryState.PENDING,
        )
        .values(state=DeliveryState.HELD)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(held, "rowcount", 0) or 0)


def backfill_of(session: Session, integration_id: int, now: datetime) -> Backfill:
    """How many held deliveries the last 48 hours kept, how many tickets they would create, and
    how many older ones would be skipped."""
    since = now - BACKFILL_WINDOW
    recent_held = and_(_held(integration_id), Delivery.created_at >= since)
    recent = session.scalar(select(func.count()).select_from(Delivery).where(recent_held)) or 0
    older = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(_held(integration_id), Delivery.created_at < since)
        )
        or 0
    )
    open_ticket = exists().where(
        TicketLink.alert_id == Delivery.alert_id,
        TicketLink.state.in_((TicketState.OPEN, TicketState.PENDING_CREATE)),
    )
    tickets = (
        session.scalar(
            select(func.count(func.distinct(Delivery.alert_id)))
            .select_from(Delivery)
            .join(AlertEvent, AlertEvent.id == Delivery.event_id)
            .where(recent_held, AlertEvent.status != AlertStatus.CLEARED.value, ~open_ticket)
        )
        or 0
    )
    return Backfill(recent=int(recent), tickets=int(tickets), older=int(older), since=since)


def activate(
    session: Session,
    integration: Integration,
    now: datetime,
    *,
    backfill: bool,
    max_delivery_age: timedelta,
) -> Activated:
    """Switch the integration on. `backfill`: its held deliveries of the last 48 hours go back
    in the queue, in their order, with a fresh deadline; every other held one is finished as
    skipped, saying why."""
    integration.active = True
    integration.deactivated_at = None
    session.flush()  # the row's UPDATE first: an ingest in flight is waited for (ingest.py)
    since = now - BACKFILL_WINDOW
    delivered = 0
    if backfill:
        sent = session.execute(
            update(Delivery)
            .where(_held(integration.id), Delivery.created_at >= since)
            .values(
                state=DeliveryState.PENDING,
                next_attempt_at=now,
                deadline_at=now + max_delivery_age,
            )
            .execution_options(synchronize_session=False)
        )
        delivered = int(getattr(sent, "rowcount", 0) or 0)
    skipped = 0
    for reason, when in (
        (SKIPPED_TOO_OLD, Delivery.created_at < since),
        (SKIPPED_DECLINED, Delivery.created_at >= since),
    ):
        done = session.execute(
            update(Delivery)
            .where(_held(integration.id), when)
            .values(
                state=DeliveryState.DONE,
                outcome=SKIPPED,
                last_error=reason,
                finished_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        skipped += int(getattr(done, "rowcount", 0) or 0)
    return Activated(delivered=delivered, skipped=skipped)
