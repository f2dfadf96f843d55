"""Issue 5's deduplication acceptance checks, through the webhook, the worker and the JSON API.

The ticket target is the in-memory FakeTarget of tests/connector/test_worker.py, so every call the
worker makes is counted. Where the rest of each check lives:

- (a) a repeat of an active alert never opens a second ticket: here, with the note interval on
  and off; the planner's decision table (tests/connector/test_planner.py) has each case, and an
  exact re-send (same source time) is recorded as a duplicate with no delivery at all
  (tests/web/test_hooks.py).
- (b) a clear for an alert never seen is recorded and ignored: here.
- (c) flapping (fire → clear → fire) within the reopen window reopens the one ticket, after it
  opens a new one: here through the API, and in test_worker.py's
  test_an_alert_firing_again_after_completion by the target's own history.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.integrations.settings import IntegrationSettings
from connector.persistence.models import Integration
from connector.pipeline.worker import Worker
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services
from tests.conftest import API_TOKEN, HOOK_TOKEN
from tests.connector.test_worker import Clock, FakeTarget, drain

FIRED = "2026-11-22T12:00:00Z"


@pytest.fixture
def fake() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def worker(services: Services, fake: FakeTarget, clock: Clock) -> Worker:
    def factory(
        _: Integration, __: IntegrationSettings, recorder: CallRecorder, **___: Any
    ) -> TicketTarget:
        return fake

    return Worker(services, factory, worker_id="w1", clock=clock, rng=random.Random(1))


def set_settings(services: Services, **settings: Any) -> None:
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.settings = {**integration.settings, **settings}


def post(client: FlaskClient, status: str, occurred_at: str, fingerprint: str = "disk") -> Any:
    body = {
        "id": fingerprint,
        "status": status,
        "severity": "error",
        "title": "Disk full on srv01",
        "occurred_at": occurred_at,
    }
    response = client.post(
        "/hooks/generic", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["accepted"][0]


def detail(client: FlaskClient, alert_id: int) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    return dict(response.get_json())


def at(minutes: int) -> str:
    """The source's time of an event `minutes` after the alert fired."""
    return f"2026-11-22T{12 + minutes // 60:02d}:{minutes % 60:02d}:00Z"


# -- (a) a repeat of an active alert never opens a second ticket ----------------------------------


@pytest.mark.parametrize(
    ("repeat_note_minutes", "outcomes", "notes"),
    [
        pytest.param(
            30,
            # The interval counts from the create until the first note: repeats within 30
            # minutes of it do not note (two senders' copies seconds apart stay quiet); +45 does.
            ["created", "ignored", "ignored", "ignored", "noted"],
            1,
            id="notes-at-most-once-per-interval",
        ),
        pytest.param(
            None, ["created", "ignored", "ignored", "ignored", "ignored"], 0, id="null-never-notes"
        ),
    ],
)
def test_a_repeat_of_an_active_alert_never_opens_a_second_ticket(
    client: FlaskClient,
    services: Services,
    worker: Worker,
    clock: Clock,
    fake: FakeTarget,
    repeat_note_minutes: int | None,
    outcomes: list[str],
    notes: int,
) -> None:
    set_settings(services, repeat_note_minutes=repeat_note_minutes)
    accepted = post(client, "active", at(0))
    drain(worker, clock)
    # Repeats 1, 10, 20 and 45 minutes after the alert fired, each handled when it arrives.
    previous = 0
    for minutes in (1, 10, 20, 45):
        clock.advance(minutes=minutes - previous)
        previous = minutes
        assert post(client, "active", at(minutes))["disposition"] == "queued"
        drain(worker, clock)

    assert len(fake.tickets) == 1
    (ticket,) = fake.tickets.values()
    assert len(ticket.notes) == notes
    assert ticket.history == ["create"] + ["note"] * notes
    shown = detail(client, accepted["alert_id"])
    assert [d["outcome"] for d in shown["deliveries"]] == outcomes
    assert {d["state"] for d in shown["deliveries"]} == {"done"}
    assert len(shown["tickets"]) == 1


# -- (b) a clear for an alert never seen is recorded and ignored ----------------------------------


def test_a_clear_for_an_alert_never_seen_is_recorded_and_ignored(
    client: FlaskClient, worker: Worker, clock: Clock, fake: FakeTarget
) -> None:
    accepted = post(client, "cleared", at(5), fingerprint="never-fired")
    drain(worker, clock)

    assert fake.calls == []
    assert fake.requests == []
    assert fake.tickets == {}
    shown = detail(client, accepted["alert_id"])
    assert shown["status"] == "cleared"
    assert shown["ticket"] is None
    assert shown["tickets"] == []
    [event] = shown["events"]
    assert (event["status"], event["disposition"]) == ("cleared", "queued")
    [delivery] = shown["deliveries"]
    assert (delivery["state"], delivery["outcome"]) == ("done", "ignored")
    assert delivery["last_error"] == "cleared, but no ticket is open for this alert"
    assert delivery["last_request"] is None


# -- (c) flapping: fire → clear → fire ------------------------------------------------------------


@pytest.mark.parametrize(
    ("reopen_window_minutes", "outcomes", "tickets"),
    [
        pytest.param(
            60,
            ["created", "completed", "reopened"],
            [{"episode": 1, "state": "open", "ticket_status": 1}],
            id="within-the-window-reopens-the-same-ticket",
        ),
        pytest.param(
            5,
            ["created", "completed", "created"],
            [
                {"episode": 1, "state": "completed", "ticket_status": 5},
                {"episode": 2, "state": "open", "ticket_status": 1},
            ],
            id="after-the-window-a-new-ticket",
        ),
    ],
)
def test_flapping_reopens_within_the_window_and_opens_a_new_ticket_after_it(
    client: FlaskClient,
    services: Services,
    worker: Worker,
    clock: Clock,
    fake: FakeTarget,
    reopen_window_minutes: int,
    outcomes: list[str],
    tickets: list[dict[str, Any]],
) -> None:
    set_settings(services, reopen_window_minutes=reopen_window_minutes)
    accepted = post(client, "active", at(0))
    post(client, "cleared", at(5))
    drain(worker, clock)
    clock.advance(minutes=10)  # the worker sees the re-fire 10 minutes after the completion
    post(client, "active", at(15))
    drain(worker, clock)

    shown = detail(client, accepted["alert_id"])
    assert [d["outcome"] for d in shown["deliveries"]] == outcomes
    assert [
        {key: ticket[key] for key in ("episode", "state", "ticket_status")}
        for ticket in shown["tickets"]
    ] == tickets
    assert len(fake.tickets) == len(tickets)
    first = fake.tickets[1000]
    assert first.status == tickets[0]["ticket_status"]  # reopened: back to active's status (New)
    assert shown["status"] == "active"
