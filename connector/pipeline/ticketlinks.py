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
    TicketRef,
    TicketSnapshot,
    TicketState,
)
from connector.integrations.settings import IntegrationSettings
from connector.payloads.requests import DeliveryOptions
from connector.persistence.models import Delivery, TicketLink
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
