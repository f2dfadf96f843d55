"""An alert's ticket episodes (TicketLink) and the plans stored on its deliveries.

The worker plans a delivery once, at its first attempt, stores the plan on it, and records each
finished step on the episode's TicketLink; these are those records.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    Plan,
    Severity,
    Step,
    StepKind,
    TicketChange,
    TicketChangeAction,
    TicketRef,
    TicketSnapshot,
    TicketState,
)
from connector.integrations.settings import IntegrationSettings
from connector.payloads.requests import DeliveryOptions
from connector.persistence.models import Alert, Delivery, TicketLink
from connector.pipeline import planner
from connector.pipeline.request_uses import completion_carries_the_clear


class CreateInFlight(Exception):
    """An unanswered create of the ticket may still be in flight: look its marker up later."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


def plan_to_json(decided: Plan, episode: int) -> dict[str, Any]:
    """The plan as stored on the delivery."""
    return {
        "outcome": decided.outcome.value,
        "reason": decided.reason,
        "episode": episode,
        "applies_severity": decided.applies_severity,
        "steps": [
            {
                "kind": s.kind.value,
                "status": s.status,
                "priority": s.priority,
                "title": s.title,
                "text": s.text,
            }
            for s in decided.steps
        ],
    }


def steps_from_json(stored: dict[str, Any]) -> list[Step]:
    """The stored steps (plans stored before priorities existed have none)."""
    return [
        Step(
            StepKind(s["kind"]),
            status=s["status"],
            title=s["title"],
            text=s["text"],
            priority=s.get("priority"),
        )
        for s in stored["steps"]
    ]


def snapshot(link: TicketLink | None) -> TicketSnapshot | None:
    """The planner's view of a TicketLink."""
    if link is None:
        return None
    return TicketSnapshot(
        state=TicketState(link.state),
        ticket_id=link.ticket_id,
        applied_status=AlertStatus(link.applied_status) if link.applied_status else None,
        completed_at=link.completed_at,
        last_note_at=link.last_note_at,
        opened_at=link.created_at,
        applied_severity=Severity(link.applied_severity) if link.applied_severity else None,
        priority=link.ticket_priority,
    )


def latest_link(session: Session, alert_id: int) -> TicketLink | None:
    """The alert's newest ticket episode."""
    return session.scalar(
        select(TicketLink)
        .where(TicketLink.alert_id == alert_id)
        .order_by(TicketLink.episode.desc())
        .limit(1)
    )


def new_marker() -> str:
    """A correlation marker for the ticket's externalID (Autotask allows 50 characters)."""
    return f"aac-{uuid.uuid4().hex}"


def apply_step(link: TicketLink, step: Step, ref: TicketRef | None, now: datetime) -> None:
    """What a finished step changes in the ticket link."""
    if ref is not None:
        link.state = TicketState.OPEN.value
        link.ticket_id = ref.ticket_id
        link.ticket_number = ref.ticket_number or link.ticket_number
        link.ticket_status = ref.status if ref.status is not None else step.status
        link.ticket_priority = step.priority if step.priority is not None else link.ticket_priority
        link.create_sent_at = None  # answered: no create of this ticket is in flight
    elif step.kind is StepKind.NOTE:
        link.last_note_at = now
    elif step.kind is StepKind.SET_PRIORITY:
        link.ticket_priority = step.priority
    elif step.kind is StepKind.COMPLETE:
        link.state = TicketState.COMPLETED.value
        link.completed_at = now
        link.ticket_status = step.status
    else:  # SET_STATUS, REOPEN (with a new priority, when the severity changed)
        link.state = TicketState.OPEN.value
        link.completed_at = None
        link.ticket_status = step.status
        if step.priority is not None:
            link.ticket_priority = step.priority


def ensure_plan(
    session: Session,
    delivery: Delivery,
    alert: IncomingAlert,
    settings: IntegrationSettings,
    now: datetime,
    options: DeliveryOptions | None = None,
) -> bool:
    """Plan at the first attempt; a create gets a pending link (with its marker) first.

    With the integration's requests (`options`), a clear whose completing request does not
    carry its text gets a note too. Returns whether the pending link was made just now (then
    no create can have been sent yet, and the marker lookup is skipped).
    """
    if delivery.plan is not None:
        return False
    link = latest_link(session, delivery.alert_id)
    policy = settings.policy(options.profile if options is not None else None)
    if options is not None and not completion_carries_the_clear(options):
        policy = replace(policy, note_on_clear=True)
    decided = planner.plan(alert, snapshot(link), policy, now)
    episode = link.episode if link is not None else 1
    fresh = False
    creates = any(step.kind is StepKind.CREATE for step in decided.steps)
    if creates and (link is None or decided.new_episode):
        episode = link.episode + 1 if link is not None else 1
        session.add(
            TicketLink(
                alert_id=delivery.alert_id,
                episode=episode,
                state=TicketState.PENDING_CREATE.value,
                marker=new_marker(),
                created_at=now,
            )
        )
        session.flush()
        fresh = True
    delivery.plan = plan_to_json(decided, episode)
    return fresh


def wait_out_a_create_in_flight(
    sent: datetime | None, guard: timedelta, marker: str, now: datetime
) -> None:
    """Postpone the marker lookup (CreateInFlight) while an unanswered create may be on its way.

    A create is sent with its marker; if the worker that sent it died or lost the delivery
    before recording the answer, Autotask may still be making that ticket. Looked up too
    early, the marker is not found and a second ticket is made: so the lookup waits until
    that call must have ended (`guard` after it was sent: its timeouts, the governor's wait,
    a margin).
    """
    if sent is None:
        return
    until = sent + guard
    if now < until:
        raise CreateInFlight(
            f"waiting: a create of this ticket was sent at {sent.isoformat()} and never"
            f" answered; its marker {marker} is looked up at {until.isoformat()}, once"
            " that call must have ended",
            until,
        )


def is_closed_remotely(link: TicketLink | None) -> bool:
    """Whether a person closed the link's ticket in the ticket system (nothing goes to it)."""
    return link is not None and link.state == TicketState.CLOSED_REMOTELY.value


def remember_a_clear(link: TicketLink, status: AlertStatus) -> None:
    """On a ticket closed in the ticket system, note that its alert cleared since: its next
    fire then opens a new ticket (planner: applied_status cleared)."""
    if is_closed_remotely(link) and status is AlertStatus.CLEARED:
        link.applied_status = AlertStatus.CLEARED.value


def apply_ticket_change(
    session: Session,
    integration_id: int,
    change: TicketChange,
    complete_status: int,
    now: datetime,
) -> str:
    """Apply a verified webhook callout to the integration's links of its ticket; say what it did.

    Deleted, or put in `complete_status` while the connector still had it open: the link is
    closed in the ticket system (no more writes to it). A ticket a person completed and then
    reopened there (another status, later) is open again. Anything else only records the status.
    """
    if change.ticket_id is None:
        return "ignored: the callout names no ticket"
    links = session.scalars(
        select(TicketLink)
        .join(Alert, Alert.id == TicketLink.alert_id)
        .where(Alert.integration_id == integration_id, TicketLink.ticket_id == change.ticket_id)
        .order_by(TicketLink.id)
        .with_for_update(of=TicketLink)
    ).all()
    if not links:
        return f"ignored: ticket {change.ticket_id} is none of this integration's alerts'"
    results = [_apply_to_link(link, change, complete_status, now) for link in links]
    return "; ".join(dict.fromkeys(results))


def _apply_to_link(
    link: TicketLink, change: TicketChange, complete_status: int, now: datetime
) -> str:
    """One link's part of apply_ticket_change."""
    closed = is_closed_remotely(link)
    if change.action is TicketChangeAction.DELETED:
        if closed and link.closed_remotely_as == "deleted":
            return "ignored: already deleted"
        _close(link, "deleted", change, now)
        return "closed: deleted in the ticket system"
    if change.status is None:
        return "ignored: the callout carries no status"
    if change.status == complete_status:
        if link.state != TicketState.OPEN.value:
            # Completed by the connector itself (its own change, when not excluded), or already
            # closed there: nothing changes.
            link.ticket_status = change.status
            return f"ignored: the ticket is already {link.state}"
        _close(link, "completed", change, now)
        return "closed: completed in the ticket system"
    if closed and link.closed_remotely_as == "completed" and _later(change, link):
        link.state = TicketState.OPEN.value
        link.completed_at = None
        link.closed_remotely_at = link.closed_remotely_as = link.closed_remotely_by = None
        link.ticket_status = change.status
        return "reopened: the ticket was reopened in the ticket system"
    if link.state == TicketState.OPEN.value:
        link.ticket_status = change.status
        return "recorded: the ticket's status"
    return f"ignored: the ticket is {link.state}"


def _close(link: TicketLink, closed_as: str, change: TicketChange, now: datetime) -> None:
    link.state = TicketState.CLOSED_REMOTELY.value
    link.completed_at = change.occurred_at or now
    link.closed_remotely_at = change.occurred_at or now
    link.closed_remotely_as = closed_as
    link.closed_remotely_by = change.person[:50] if change.person else None
    if change.status is not None:
        link.ticket_status = change.status


def _later(change: TicketChange, link: TicketLink) -> bool:
    """Whether the change happened after the link was closed (unknown times: it did)."""
    if change.occurred_at is None or link.closed_remotely_at is None:
        return True
    return change.occurred_at > link.closed_remotely_at
