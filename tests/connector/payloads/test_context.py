"""The render context: built from the draft, the step and the ticket, as the worker does."""

from __future__ import annotations

from connector.domain import AlertStatus, Step, StepKind
from connector.payloads.context import RenderContext
from tests.connector.payloads.support import (
    CONTOSO,
    MARKER,
    SETTINGS,
    alert,
    context_for,
)


def test_context_built_from_draft_step_and_ticket() -> None:
    event = alert(status=AlertStatus.ESCALATED, properties={}, started_at=None)
    built = context_for(event).variables()
    assert built["autotask"] == {
        "company_id": CONTOSO,
        "account_id": CONTOSO,
        "priority": 1,  # error → High
        "status": 11,  # escalated → Escalate
        "queue_id": 29682833,
        "due_date": "2024-03-22T09:30:00Z",
        "issue_type": 2,
        "sub_issue_type": 201,
        "work_type": 29682801,
        "ticket_category": 4,
        "ticket_type": 5,
        "source": 8,
        "note_type": 1,
        "publish": 1,
        "integration_code": "",  # never the tracking identifier (issue 15)
        "zone_url": "",
    }
    assert built["ticket"] == {
        "id": 4242,
        "number": "T20240321.0001",
        "marker": MARKER,
        "description": "/var is at 97 %\nHost: srv01\nMonitor: disk\nSeverity: error\n"
        "Started: 2024-03-21T09:30:00+00:00\nSource: generic",
    }
    tokens = built["tokens"]
    assert isinstance(tokens, dict)
    assert tokens["ALERTTYPE"] == "generic"  # no alert.type property: the source
    assert tokens["START"] == ""
    assert tokens["INSTANCE"] == ""


def test_context_without_draft_takes_the_status_from_the_settings() -> None:
    event = alert(status=AlertStatus.ACKNOWLEDGED)
    built = RenderContext.build(event, settings=SETTINGS).variables()
    assert built["autotask"]["status"] == 8  # type: ignore[index]
    assert built["ticket"]["description"].startswith("/var is at 97 %")  # type: ignore[index]
    complete = Step(StepKind.COMPLETE, status=5, text="Alert cleared.")
    built = RenderContext.build(event, settings=SETTINGS, step=complete).variables()
    assert built["autotask"]["status"] == 5  # type: ignore[index]
    assert built["note"] == {"title": "", "text": "Alert cleared."}
