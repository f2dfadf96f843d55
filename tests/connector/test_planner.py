"""The planner's decision tree, table-driven: event status × what we know of the ticket."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    LifecyclePolicy,
    Outcome,
    Severity,
    SeverityChanges,
    StepKind,
    TicketSnapshot,
    TicketState,
)
from connector.pipeline.planner import plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = LifecyclePolicy(
    status_map={
        AlertStatus.ACTIVE: 1,
        AlertStatus.ACKNOWLEDGED: 13,
        AlertStatus.ESCALATED: 11,
        AlertStatus.CLEARED: 5,
    },
    repeat_note_interval=timedelta(hours=1),
    reopen_window=timedelta(hours=24),
)

A = AlertStatus


def event(status: AlertStatus, **kwargs: object) -> IncomingAlert:
    fields: dict[str, object] = {
        "source": "generic",
        "fingerprint": "fp-1",
        "status": status,
        "severity": Severity.ERROR,
        "title": "Disk full on srv01",
        "message": "/var is 99% full",
    }
    fields.update(kwargs)
    return IncomingAlert(**fields)  # type: ignore[arg-type]


def open_ticket(
    applied: AlertStatus = A.ACTIVE,
    last_note: timedelta | None = None,
    opened: timedelta | None = None,
) -> TicketSnapshot:
    return TicketSnapshot(
        TicketState.OPEN,
        ticket_id=42,
        applied_status=applied,
        last_note_at=NOW - last_note if last_note is not None else None,
        opened_at=NOW - opened if opened is not None else None,
    )


def completed(ago: timedelta) -> TicketSnapshot:
    return TicketSnapshot(
        TicketState.COMPLETED, ticket_id=42, applied_status=A.CLEARED, completed_at=NOW - ago
    )


CASES = [
    # (id, event status, ticket, outcome, step kinds, statuses of status steps, new episode)
    ("no ticket, active, creates", A.ACTIVE, None, Outcome.CREATED, ["create"], [1], False),
    ("no ticket, acknowledged, creates acknowledged with a note", A.ACKNOWLEDGED, None,
     Outcome.CREATED, ["create", "note"], [13], False),
    ("no ticket, escalated, creates escalated", A.ESCALATED, None, Outcome.CREATED,
     ["create", "note"], [11], False),
    ("no ticket, cleared, ignored", A.CLEARED, None, Outcome.IGNORED, [], [], False),
    ("pending create, active, creates (worker looks up the marker first)", A.ACTIVE,
     TicketSnapshot(TicketState.PENDING_CREATE), Outcome.CREATED, ["create"], [1], False),
    ("open, repeat active, never noted, notes", A.ACTIVE, open_ticket(), Outcome.NOTED,
     ["note"], [], False),
    ("open, repeat active seconds after the create, ignored", A.ACTIVE,
     open_ticket(opened=timedelta(seconds=5)), Outcome.IGNORED, [], [], False),
    ("open, repeat active an interval after the create, notes", A.ACTIVE,
     open_ticket(opened=timedelta(hours=2)), Outcome.NOTED, ["note"], [], False),
    ("open, recent note beats an old create, ignored", A.ACTIVE,
     open_ticket(last_note=timedelta(minutes=10), opened=timedelta(hours=5)), Outcome.IGNORED,
     [], [], False),
    ("open, repeat active within interval, ignored", A.ACTIVE,
     open_ticket(last_note=timedelta(minutes=10)), Outcome.IGNORED, [], [], False),
    ("open, repeat active after interval, notes", A.ACTIVE,
     open_ticket(last_note=timedelta(hours=2)), Outcome.NOTED, ["note"], [], False),
    ("open, active after acknowledgement, notes and keeps status", A.ACTIVE,
     open_ticket(applied=A.ACKNOWLEDGED, last_note=timedelta(minutes=1)), Outcome.NOTED,
     ["note"], [], False),
    ("open, acknowledged, status and note", A.ACKNOWLEDGED, open_ticket(), Outcome.UPDATED,
     ["set_status", "note"], [13], False),
    ("open, escalated, status and note", A.ESCALATED, open_ticket(A.ACKNOWLEDGED),
     Outcome.UPDATED, ["set_status", "note"], [11], False),
    ("open, cleared, completes with the resolution", A.CLEARED, open_ticket(), Outcome.COMPLETED,
     ["complete"], [5], False),
    ("completed, cleared again, ignored", A.CLEARED, completed(timedelta(hours=1)),
     Outcome.IGNORED, [], [], False),
    ("completed, fires within reopen window, reopens", A.ACTIVE, completed(timedelta(hours=3)),
     Outcome.REOPENED, ["reopen", "note"], [1], False),
    ("completed, acknowledged within window, reopens acknowledged", A.ACKNOWLEDGED,
     completed(timedelta(hours=3)), Outcome.REOPENED, ["reopen", "note"], [13], False),
    ("completed, fires after reopen window, new ticket", A.ACTIVE, completed(timedelta(days=2)),
     Outcome.CREATED, ["create"], [1], True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "ticket", "outcome", "kinds", "statuses", "new_episode"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(
    status: AlertStatus,
    ticket: TicketSnapshot | None,
    outcome: Outcome,
    kinds: list[str],
    statuses: list[int],
    new_episode: bool,
) -> None:
    decided = plan(event(status), ticket, POLICY, NOW)
    assert decided.outcome is outcome
    assert [step.kind.value for step in decided.steps] == kinds
    assert [s.status for s in decided.steps if s.kind is not StepKind.NOTE] == statuses
    assert decided.new_episode is new_episode
    if outcome is Outcome.IGNORED:
        assert decided.reason


def test_clear_with_complete_off_only_notes() -> None:
    policy = LifecyclePolicy(status_map=POLICY.status_map, complete_on_clear=False)
    decided = plan(event(A.CLEARED), open_ticket(), policy, NOW)
    assert decided.outcome is Outcome.NOTED
    assert [step.kind for step in decided.steps] == [StepKind.NOTE]


def test_repeat_notes_switched_off_ignores_repeats() -> None:
    policy = LifecyclePolicy(status_map=POLICY.status_map, repeat_note_interval=None)
    decided = plan(event(A.ACTIVE), open_ticket(), policy, NOW)
    assert decided.outcome is Outcome.IGNORED


def test_acknowledgement_note_names_who_and_why() -> None:
    decided = plan(
        event(A.ACKNOWLEDGED, actor="jane.doe", note="looking into it"), open_ticket(), POLICY, NOW
    )
    (note,) = [step for step in decided.steps if step.kind is StepKind.NOTE]
    assert "By: jane.doe" in note.text
    assert "Note: looking into it" in note.text
    assert note.title == "Disk full on srv01 — acknowledged"


def test_the_completion_carries_the_clear_message_as_its_resolution() -> None:
    decided = plan(
        event(A.CLEARED, message="/var back to 40%", actor="jane"), open_ticket(), POLICY, NOW
    )
    (complete,) = decided.steps  # no separate note: the resolution says it
    assert complete.kind is StepKind.COMPLETE
    assert complete.text.splitlines() == ["Alert cleared.", "By: jane", "/var back to 40%"]
    assert complete.title == "Disk full on srv01 — cleared"


def test_a_completion_that_does_not_carry_the_clear_notes_it_first() -> None:
    policy = LifecyclePolicy(status_map=POLICY.status_map, note_on_clear=True)
    decided = plan(event(A.CLEARED, message="/var back to 40%"), open_ticket(), policy, NOW)
    note, complete = decided.steps
    assert (note.kind, complete.kind) == (StepKind.NOTE, StepKind.COMPLETE)
    assert "/var back to 40%" in note.text
    assert complete.text == note.text


SWITCHED_OFF = [
    # (id, statuses delivered, event status, ticket, outcome, step kinds, reason)
    ("acknowledged off: an ack changes nothing", {A.ACTIVE, A.ESCALATED, A.CLEARED},
     A.ACKNOWLEDGED, open_ticket(), Outcome.IGNORED, [],
     "deliveries for acknowledged alerts are off"),
    ("cleared off: the ticket stays open", {A.ACTIVE, A.ACKNOWLEDGED, A.ESCALATED},
     A.CLEARED, open_ticket(), Outcome.IGNORED, [], "deliveries for cleared alerts are off"),
    ("active off: a new alert opens no ticket", {A.ACKNOWLEDGED, A.ESCALATED, A.CLEARED},
     A.ACTIVE, None, Outcome.IGNORED, [], "deliveries for active alerts are off"),
    ("active off: an ack of an alert with no ticket opens none",
     {A.ACKNOWLEDGED, A.ESCALATED, A.CLEARED}, A.ACKNOWLEDGED, None, Outcome.IGNORED, [],
     "no ticket is open and new tickets (active) are switched off"),
    ("active off: an open ticket is still updated", {A.ACKNOWLEDGED, A.ESCALATED, A.CLEARED},
     A.ACKNOWLEDGED, open_ticket(), Outcome.UPDATED, ["set_status", "note"], ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("delivered", "status", "ticket", "outcome", "kinds", "reason"),
    [case[1:] for case in SWITCHED_OFF],
    ids=[case[0] for case in SWITCHED_OFF],
)
def test_statuses_switched_off(
    delivered: set[AlertStatus],
    status: AlertStatus,
    ticket: TicketSnapshot | None,
    outcome: Outcome,
    kinds: list[str],
    reason: str,
) -> None:
    policy = dataclasses.replace(POLICY, delivered=frozenset(delivered))
    decided = plan(event(status), ticket, policy, NOW)
    assert decided.outcome is outcome
    assert [step.kind.value for step in decided.steps] == kinds
    assert decided.reason == reason


# -- severity changes of an open alert -------------------------------------------------------------

PRIORITIES = {Severity.CRITICAL: 4, Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}
S = Severity


def severity_policy(mode: str, **overrides: object) -> LifecyclePolicy:
    fields: dict[str, object] = {"priority_map": PRIORITIES, **overrides}
    return dataclasses.replace(
        POLICY,
        severity_changes=SeverityChanges(mode),
        **fields,  # type: ignore[arg-type]
    )


def open_at(severity: Severity | None, priority: int | None = None) -> TicketSnapshot:
    return dataclasses.replace(
        open_ticket(opened=timedelta(minutes=1)),
        applied_severity=severity,
        priority=priority if priority is not None else PRIORITIES.get(severity),  # type: ignore[arg-type]
    )


SEVERITY_CASES = [
    # (id, mode, ticket's severity, event's severity, outcome, step kinds, new priority, line)
    ("follow: milder", "follow", S.CRITICAL, S.WARNING, Outcome.UPDATED,
     ["set_priority", "note"], 2,
     "Priority changed from Critical to Medium: severity warning (was critical)."),
    ("follow: worse", "follow", S.WARNING, S.CRITICAL, Outcome.UPDATED,
     ["set_priority", "note"], 4,
     "Priority changed from Medium to Critical: severity critical (was warning)."),
    ("follow: same severity is a quiet repeat", "follow", S.ERROR, S.ERROR, Outcome.IGNORED,
     [], None, None),
    ("escalate: worse", "escalate", S.INFO, S.ERROR, Outcome.UPDATED, ["set_priority", "note"],
     1, "Priority changed from Low to High: severity error (was info)."),
    ("escalate: milder is a quiet repeat", "escalate", S.ERROR, S.INFO, Outcome.IGNORED, [],
     None, None),
    ("never: worse is a quiet repeat", "never", S.INFO, S.CRITICAL, Outcome.IGNORED, [], None,
     None),
    ("unknown severity (an older ticket) is a quiet repeat", "follow", None, S.CRITICAL,
     Outcome.IGNORED, [], None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "was", "now", "outcome", "kinds", "priority", "line"),
    [case[1:] for case in SEVERITY_CASES],
    ids=[case[0] for case in SEVERITY_CASES],
)
def test_a_severity_change_of_an_open_alert(
    mode: str,
    was: Severity | None,
    now: Severity,
    outcome: Outcome,
    kinds: list[str],
    priority: int | None,
    line: str | None,
) -> None:
    decided = plan(event(A.ACTIVE, severity=now), open_at(was), severity_policy(mode), NOW)

    assert decided.outcome is outcome
    assert [step.kind.value for step in decided.steps] == kinds
    assert decided.applies_severity is (line is not None)
    if priority is not None:
        assert decided.steps[0].priority == priority
        assert decided.steps[0].status is None  # the status an engineer set is left alone
    if line is not None:
        assert decided.steps[-1].text.splitlines()[0] == line


def test_a_severity_change_that_keeps_the_priority_is_noted_only() -> None:
    policy = severity_policy("follow", priority_map={**PRIORITIES, S.WARNING: 1})
    decided = plan(event(A.ACTIVE, severity=S.WARNING), open_at(S.ERROR), policy, NOW)

    assert decided.outcome is Outcome.NOTED
    assert [step.kind for step in decided.steps] == [StepKind.NOTE]
    assert decided.steps[0].text.splitlines()[0] == (
        "Severity warning (was error); priority stays High."
    )
    assert decided.applies_severity


def test_a_monitor_override_fixes_the_priority_whatever_the_severity() -> None:
    policy = severity_policy("follow", monitor_priorities={"Disk": 3})
    decided = plan(
        event(A.ACTIVE, severity=S.CRITICAL, monitor="Disk"), open_at(S.ERROR, 3), policy, NOW
    )

    assert [step.kind for step in decided.steps] == [StepKind.NOTE]
    assert "priority stays Low" in decided.steps[0].text


def test_unnamed_priorities_are_shown_by_id() -> None:
    policy = severity_policy("follow", priority_map={**PRIORITIES, S.WARNING: 7})
    decided = plan(event(A.ACTIVE, severity=S.WARNING), open_at(S.CRITICAL), policy, NOW)

    assert decided.steps[-1].text.startswith("Priority changed from Critical to 7:")


@pytest.mark.parametrize("status", [A.ACKNOWLEDGED, A.ESCALATED])
def test_an_acknowledgement_at_a_new_severity_sets_status_and_priority_in_one_update(
    status: AlertStatus,
) -> None:
    decided = plan(
        event(status, severity=S.WARNING), open_at(S.CRITICAL), severity_policy("follow"), NOW
    )

    assert [step.kind for step in decided.steps] == [StepKind.SET_STATUS, StepKind.NOTE]
    update, note = decided.steps
    assert (update.status, update.priority) == (POLICY.status_map[status], 2)
    assert "Priority changed from Critical to Medium" in note.text
    assert decided.outcome is Outcome.UPDATED and decided.applies_severity


def test_an_acknowledgement_at_a_kept_priority_sets_only_the_status() -> None:
    decided = plan(event(A.ACKNOWLEDGED), open_at(S.ERROR), severity_policy("follow"), NOW)

    assert [(s.kind, s.status, s.priority) for s in decided.steps[:1]] == [
        (StepKind.SET_STATUS, 13, None)
    ]


# -- status_on_acknowledge off (the default where an update costs a read first) -----------------

NOTE_ONLY = dataclasses.replace(POLICY, status_on_acknowledge=False)


def test_an_acknowledgement_without_status_change_only_notes() -> None:
    decided = plan(event(A.ACKNOWLEDGED, actor="jane", note="on it"), open_ticket(), NOTE_ONLY, NOW)

    assert decided.outcome is Outcome.NOTED
    (note,) = decided.steps
    assert note.kind is StepKind.NOTE
    assert note.text.splitlines() == ["Alert was acknowledged.", "By: jane", "Note: on it"]
    assert note.title == "Disk full on srv01 — acknowledged"


def test_an_acknowledgement_without_status_change_still_sets_a_new_priority() -> None:
    policy = dataclasses.replace(severity_policy("follow"), status_on_acknowledge=False)
    decided = plan(event(A.ACKNOWLEDGED, severity=S.WARNING), open_at(S.CRITICAL), policy, NOW)

    assert decided.outcome is Outcome.UPDATED and decided.applies_severity
    assert [(s.kind, s.priority) for s in decided.steps] == [
        (StepKind.SET_PRIORITY, 2),
        (StepKind.NOTE, None),
    ]
    assert "Priority changed from Critical to Medium" in decided.steps[1].text


def test_an_escalation_sets_the_status_whatever_status_on_acknowledge_says() -> None:
    decided = plan(event(A.ESCALATED), open_ticket(A.ACKNOWLEDGED), NOTE_ONLY, NOW)

    assert [(s.kind, s.status) for s in decided.steps] == [
        (StepKind.SET_STATUS, 11),
        (StepKind.NOTE, None),
    ]


@pytest.mark.parametrize(
    ("status", "kinds"),
    [
        (A.ACKNOWLEDGED, ["create", "note"]),  # no ticket yet: created in the ack's status
        (A.CLEARED, ["complete"]),  # a later clear still completes the ticket
    ],
)
def test_status_on_acknowledge_off_changes_nothing_else(
    status: AlertStatus, kinds: list[str]
) -> None:
    ticket = None if status is A.ACKNOWLEDGED else open_ticket(A.ACKNOWLEDGED)
    decided = plan(event(status), ticket, NOTE_ONLY, NOW)

    assert [step.kind.value for step in decided.steps] == kinds
    assert decided.steps[0].status == POLICY.status_map[status]


def test_active_again_after_an_acknowledgement_that_kept_the_status_is_noted() -> None:
    # The acknowledgement is recorded as applied although the status stayed: firing again is
    # news ("active again"), not a repeat held back by the note interval.
    ticket = open_ticket(applied=A.ACKNOWLEDGED, last_note=timedelta(minutes=1))
    decided = plan(event(A.ACTIVE), ticket, NOTE_ONLY, NOW)

    assert decided.outcome is Outcome.NOTED
    assert decided.steps[0].text.startswith("Alert is active again.")


def test_a_completed_ticket_reopens_acknowledged_whatever_status_on_acknowledge_says() -> None:
    decided = plan(event(A.ACKNOWLEDGED), completed(timedelta(hours=1)), NOTE_ONLY, NOW)

    assert decided.outcome is Outcome.REOPENED
    assert [(s.kind, s.status) for s in decided.steps] == [
        (StepKind.REOPEN, 13),
        (StepKind.NOTE, None),
    ]


def test_a_create_carries_the_priority_and_applies_the_severity() -> None:
    decided = plan(event(A.ACTIVE, severity=S.WARNING), None, severity_policy("follow"), NOW)

    assert decided.steps[0].kind is StepKind.CREATE
    assert decided.steps[0].priority == 2
    assert decided.applies_severity


def test_a_reopen_at_a_new_severity_changes_the_priority_too() -> None:
    ticket = dataclasses.replace(
        completed(timedelta(minutes=5)), applied_severity=S.WARNING, priority=2
    )
    decided = plan(event(A.ACTIVE, severity=S.CRITICAL), ticket, severity_policy("follow"), NOW)

    assert decided.outcome is Outcome.REOPENED
    # One update reopens the ticket and sets its new priority.
    assert [(s.kind, s.status, s.priority) for s in decided.steps] == [
        (StepKind.REOPEN, 1, 4),
        (StepKind.NOTE, None, None),
    ]
    assert decided.applies_severity
