"""The decision tree: from an alert event and what we know of its ticket, the steps to take.

Pure: no I/O, no clock of its own (`now` comes in), no Flask, no database. The worker runs it and
carries out the steps through a ticket target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    LifecyclePolicy,
    Outcome,
    Plan,
    SeverityChanges,
    Step,
    StepKind,
    TicketSnapshot,
    TicketState,
)

_WORDS = {
    AlertStatus.ACTIVE: "fired",
    AlertStatus.ACKNOWLEDGED: "was acknowledged",
    AlertStatus.ESCALATED: "was escalated",
    AlertStatus.CLEARED: "cleared",
}

#: Why nothing more is written to a ticket a person closed in the ticket system.
CLOSED_REMOTELY_REASON = (
    "the ticket was closed in the ticket system (completed or deleted there): nothing more is"
    " written to it; the alert's next fire after it clears opens a new ticket"
)


def plan(
    event: IncomingAlert,
    ticket: TicketSnapshot | None,
    policy: LifecyclePolicy,
    now: datetime,
) -> Plan:
    """Decide what one alert event does to the alert's ticket."""
    status = event.status
    if status not in policy.delivered:
        return Plan(Outcome.IGNORED, reason=f"deliveries for {status.value} alerts are off")
    if ticket is None or ticket.state is TicketState.PENDING_CREATE:
        return _without_open_ticket(event, policy, new_episode=False)
    if ticket.state is TicketState.COMPLETED:
        reopen_until = (ticket.completed_at or now) + policy.reopen_window
        if status is AlertStatus.CLEARED:
            return Plan(Outcome.IGNORED, reason="cleared again; the ticket is already complete")
        if now <= reopen_until:
            change = severity_change(event, ticket, policy)
            note = _note(event, f"Alert {_WORDS[status]} again; ticket reopened.", change)
            reopen = Step(
                StepKind.REOPEN, status=policy.status_map[status], priority=_new_priority(change)
            )
            return Plan(Outcome.REOPENED, (reopen, note), applies_severity=change is not None)
        return _without_open_ticket(event, policy, new_episode=True)
    if ticket.state is TicketState.CLOSED_REMOTELY:
        if status is not AlertStatus.CLEARED and ticket.applied_status is AlertStatus.CLEARED:
            # The alert cleared after (or before) a person closed its ticket: this is a new fire.
            return _without_open_ticket(event, policy, new_episode=True)
        return Plan(Outcome.IGNORED, reason=CLOSED_REMOTELY_REASON)
    # The ticket is open.
    if status is AlertStatus.CLEARED:
        note = _note(event, "Alert cleared.", resolution=True)
        if policy.complete_on_clear:
            # One call: the clear's text is the resolution of the update that completes the
            # ticket (REST PATCH, SOAP update; Resolution holds 32000 characters, as many as a
            # note's description: autotask-api.md §3, §5). A separate note would say it twice,
            # unless the completing request does not carry it (note_on_clear).
            complete = Step(
                StepKind.COMPLETE, status=policy.complete_status, title=note.title, text=note.text
            )
            return Plan(
                Outcome.COMPLETED, (note, complete) if policy.note_on_clear else (complete,)
            )
        return Plan(Outcome.NOTED, (note,), reason="complete on clear is off")
    change = severity_change(event, ticket, policy)
    if status is AlertStatus.ACTIVE:
        if change is not None:
            # A new severity (LogicMonitor's `update`, a re-sent alert at another level): the
            # priority follows, whatever status an engineer gave the ticket.
            steps = (*_steps(change), _note(event, change.line))
            outcome = Outcome.UPDATED if change.priority is not None else Outcome.NOTED
            return Plan(outcome, steps, applies_severity=True)
        if ticket.applied_status not in (None, AlertStatus.ACTIVE, AlertStatus.CLEARED):
            # Active again after an acknowledgement: say so, keep the engineer's status.
            return Plan(Outcome.NOTED, (_note(event, "Alert is active again."),))
        interval = policy.repeat_note_interval
        if interval is None:
            return Plan(Outcome.IGNORED, reason="repeat of an active alert; repeat notes are off")
        # Senders that stamp each copy of an alert anew (two Prometheus replicas, each with its
        # own startsAt) repeat it seconds after the create: the interval counts from then too.
        last_word = ticket.last_note_at or ticket.opened_at
        if last_word is not None and now - last_word < interval:
            return Plan(
                Outcome.IGNORED, reason="repeat of an active alert within the note interval"
            )
        return Plan(Outcome.NOTED, (_note(event, "Alert is still active."),))
    # Acknowledged or escalated.
    note = _note(event, f"Alert {_WORDS[status]}.", change)
    if status is AlertStatus.ACKNOWLEDGED and not policy.status_on_acknowledge:
        # The note says it; the status stays (an update costs a read first on some flavours).
        # The alert's status is still recorded as applied, so its next firing is noted as
        # active again. Escalations keep setting it: workflow rules act on that status.
        changes_priority = change is not None and change.priority is not None
        return Plan(
            Outcome.UPDATED if changes_priority else Outcome.NOTED,
            (*_steps(change), note),
            applies_severity=change is not None,
        )
    # One update sets the status and, when the severity changed, the priority with it.
    update = Step(
        StepKind.SET_STATUS, status=policy.status_map[status], priority=_new_priority(change)
    )
    return Plan(Outcome.UPDATED, (update, note), applies_severity=change is not None)


@dataclass(frozen=True)
class SeverityChange:
    """An open alert's new severity as its ticket takes it: the new priority (None when the
    priority stays) and the line that says so in the note."""

    priority: int | None
    line: str


def severity_change(
    event: IncomingAlert, ticket: TicketSnapshot, policy: LifecyclePolicy
) -> SeverityChange | None:
    """What the event's severity changes on the ticket, if anything, as the policy says.

    Compared with the severity the ticket's priority reflects: the same severity again, a
    milder one under `escalate`, or any under `never` change nothing (the event is then handled
    as before: a repeat stays quiet).
    """
    was = ticket.applied_severity
    now = event.severity
    if was is None or now is was or policy.severity_changes is SeverityChanges.NEVER:
        return None
    if policy.severity_changes is SeverityChanges.ESCALATE and now.rank < was.rank:
        return None
    old = ticket.priority if ticket.priority is not None else policy.priority_map.get(was)
    new = policy.priority_of(event)
    if new is None or new == old:
        return SeverityChange(
            None,
            f"Severity {now.value} (was {was.value}); priority stays {policy.priority_label(old)}.",
        )
    return SeverityChange(
        new,
        f"Priority changed from {policy.priority_label(old)} to {policy.priority_label(new)}:"
        f" severity {now.value} (was {was.value}).",
    )


def _new_priority(change: SeverityChange | None) -> int | None:
    """The priority a severity change gives the ticket; None when it stays."""
    return change.priority if change is not None else None


def _steps(change: SeverityChange | None) -> tuple[Step, ...]:
    """The priority update a severity change needs, if any (when no status changes with it)."""
    if change is None or change.priority is None:
        return ()
    return (Step(StepKind.SET_PRIORITY, priority=change.priority),)


def _without_open_ticket(
    event: IncomingAlert, policy: LifecyclePolicy, *, new_episode: bool
) -> Plan:
    if event.status is AlertStatus.CLEARED:
        return Plan(Outcome.IGNORED, reason="cleared, but no ticket is open for this alert")
    if AlertStatus.ACTIVE not in policy.delivered:
        return Plan(
            Outcome.IGNORED, reason="no ticket is open and new tickets (active) are switched off"
        )
    steps = [
        Step(
            StepKind.CREATE,
            status=policy.status_map[event.status],
            priority=policy.priority_of(event),
        )
    ]
    if event.status is not AlertStatus.ACTIVE:
        steps.append(_note(event, f"Alert {_WORDS[event.status]}."))
    return Plan(Outcome.CREATED, tuple(steps), new_episode=new_episode, applies_severity=True)


def _note(
    event: IncomingAlert,
    headline: str,
    change: SeverityChange | None = None,
    *,
    resolution: bool = False,
) -> Step:
    """A note saying what happened, who did it and why (and a severity change, if any)."""
    lines = [headline]
    if change is not None and change.line != headline:
        lines.append(change.line)
    if event.actor:
        lines.append(f"By: {event.actor}")
    if event.note:
        lines.append(f"Note: {event.note}")
    if event.message and (resolution or event.status is AlertStatus.ACTIVE):
        lines.append(event.message)
    title = f"{event.title} — {event.status.value}"
    return Step(StepKind.NOTE, title=title, text="\n".join(lines))
