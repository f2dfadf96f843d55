"""Alerts as senders really send them: out of order, with changing severities, from several
sources with the same ids — through the webhook, a worker and the Autotask sandbox.

Every check reads the ticket back from the sandbox (its status, priority and notes) and the
alert's history from the JSON API, so what is asserted is what an engineer and an admin see.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.persistence.models import Integration
from connector.services import Services
from connector.wiring import make_worker
from tests.conftest import API_TOKEN, HOOK_TOKEN, RestClient

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
COMPLETE = 5
#: Autotask's standard priorities and the default severity → priority map.
CRITICAL, HIGH, MEDIUM, LOW = 4, 1, 2, 3


def post(client: FlaskClient, source: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/hooks/{source}", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return dict(response.get_json())


def generic(client: FlaskClient, status: str, minute: int, **fields: Any) -> dict[str, Any]:
    """A generic event of alert "disk-srv01" that happened `minute` minutes after 12:00."""
    body = {
        "id": "disk-srv01",
        "status": status,
        "severity": "critical",
        "title": "Disk full on srv01",
        "occurred_at": f"2026-11-22T12:{minute:02d}:00Z",
    }
    body.update(fields)
    accepted: dict[str, Any] = post(client, "generic", body)["accepted"][0]
    return accepted


def work(connector_app: Flask) -> None:
    """Let one worker process every due delivery."""
    worker = make_worker(connector_app.extensions["connector"])
    for _ in range(100):
        if not worker.run_once():
            return
    raise AssertionError("the worker still had deliveries after 100 rounds")


def alert_detail(client: FlaskClient, alert_id: int) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    return dict(response.get_json())


def ticket_of(rest: RestClient, client: FlaskClient, alert_id: int) -> dict[str, Any] | None:
    """The alert's latest ticket as the sandbox has it, with its notes' texts; None if none."""
    link = alert_detail(client, alert_id)["ticket"]
    if link is None or link["ticket_id"] is None:
        return None
    response = rest.get(f"Tickets/{link['ticket_id']}")
    assert response.status_code == 200
    ticket: dict[str, Any] = response.json()["item"]
    notes = rest.post(
        "TicketNotes/query",
        json={"filter": [{"op": "eq", "field": "ticketID", "value": ticket["id"]}]},
    )
    assert notes.status_code == 200, notes.text
    ticket["notes"] = [note["description"] for note in notes.json()["items"]]
    return ticket


def set_settings(connector_app: Flask, **settings: Any) -> None:
    services: Services = connector_app.extensions["connector"]
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.settings = {**integration.settings, **settings}


# -- order: the sender's time, not arrival ---------------------------------------------------------


def test_a_clear_that_overtook_its_active_leaves_no_ticket_open(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    cleared = generic(client, "cleared", minute=5)
    work(connector_app)
    late_active = generic(client, "active", minute=0)
    work(connector_app)

    assert late_active["alert_id"] == cleared["alert_id"]
    assert late_active["disposition"].startswith("stale: this active event happened at")
    assert ticket_of(rest, client, cleared["alert_id"]) is None
    detail = alert_detail(client, cleared["alert_id"])
    assert detail["status"] == "cleared"
    dispositions = [event["disposition"] for event in detail["events"]]
    assert dispositions[0] == "queued"
    assert dispositions[1].startswith("stale: ") and "(the alert is cleared)" in dispositions[1]
    # A stale event gets no delivery at all: nothing is sent to Autotask for it.
    assert len(detail["deliveries"]) == 1


@pytest.mark.parametrize("worked_before_the_late_ack", [True, False], ids=["worked", "queued"])
def test_a_late_acknowledgement_keeps_the_ticket_complete(
    client: FlaskClient,
    connector_app: Flask,
    rest: RestClient,
    worked_before_the_late_ack: bool,
) -> None:
    fired = generic(client, "active", minute=0)
    generic(client, "cleared", minute=10)
    if worked_before_the_late_ack:
        work(connector_app)
    late_ack = generic(client, "acknowledged", minute=5, acknowledged_by="jane")
    work(connector_app)

    assert late_ack["disposition"].startswith("stale: this acknowledged event happened at")
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["status"] == COMPLETE
    assert not any("acknowledged" in note for note in ticket["notes"])
    detail = alert_detail(client, fired["alert_id"])
    assert detail["status"] == "cleared"
    assert [e["disposition"].split(":")[0] for e in detail["events"]] == [
        "queued",
        "queued",
        "stale",
    ]


def test_events_without_a_time_apply_in_arrival_order(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    """A clear that names no time of its own is never stale: the sender's order is arrival."""
    fired = generic(client, "active", minute=0)
    cleared = post(
        client, "generic", {"id": "disk-srv01", "status": "cleared", "title": "Disk full"}
    )["accepted"][0]
    work(connector_app)

    assert cleared["disposition"] == "queued"
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["status"] == COMPLETE


def test_a_new_firing_after_a_clear_is_not_stale(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    first = generic(client, "active", minute=0)
    generic(client, "cleared", minute=10)
    work(connector_app)
    again = generic(client, "active", minute=20)
    work(connector_app)

    assert again["disposition"] == "queued"
    ticket = ticket_of(rest, client, first["alert_id"])
    assert ticket is not None and ticket["status"] != COMPLETE  # reopened


# -- severity changes: the priority follows -------------------------------------------------------

FOLLOW_NOTES = [
    "Priority changed from Critical to Medium: severity warning (was critical).",
    "Priority changed from Medium to High: severity error (was warning).",
    "Priority changed from High to Critical: severity critical (was error).",
]


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
@pytest.mark.parametrize(
    ("mode", "priorities", "notes"),
    [
        pytest.param("follow", [CRITICAL, MEDIUM, HIGH, CRITICAL], FOLLOW_NOTES, id="follow"),
        pytest.param(
            # Milder severities change nothing; the ticket keeps reflecting critical, so the
            # return to critical is no change either.
            "escalate",
            [CRITICAL, CRITICAL, CRITICAL, CRITICAL],
            [],
            id="escalate-only",
        ),
        pytest.param("never", [CRITICAL, CRITICAL, CRITICAL, CRITICAL], [], id="never"),
    ],
)
def test_the_priority_follows_the_severity_as_configured(
    client: FlaskClient,
    connector_app: Flask,
    rest: RestClient,
    mode: str,
    priorities: list[int],
    notes: list[str],
) -> None:
    set_settings(connector_app, severity_changes=mode)
    seen = []
    alert_id = 0
    for minute, severity in enumerate(["critical", "warning", "error", "critical"]):
        alert_id = generic(client, "active", minute=minute, severity=severity)["alert_id"]
        # A repeat of the same severity stays quiet, as before.
        generic(client, "active", minute=minute, severity=severity, title="same again")
        work(connector_app)
        ticket = ticket_of(rest, client, alert_id)
        assert ticket is not None
        seen.append(ticket["priority"])

    assert seen == priorities
    ticket = ticket_of(rest, client, alert_id)
    assert ticket is not None
    assert [note.splitlines()[0] for note in ticket["notes"]] == notes
    assert ticket["status"] == 1  # the status is left alone


def test_an_escalation_under_escalate_only_raises_the_priority(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    set_settings(connector_app, severity_changes="escalate")
    alert_id = generic(client, "active", minute=0, severity="warning")["alert_id"]
    generic(client, "active", minute=1, severity="info")
    generic(client, "active", minute=2, severity="critical")
    work(connector_app)

    ticket = ticket_of(rest, client, alert_id)
    assert ticket is not None and ticket["priority"] == CRITICAL
    assert [note.splitlines()[0] for note in ticket["notes"]] == [
        "Priority changed from Medium to Critical: severity critical (was warning)."
    ]


def test_a_severity_change_keeps_an_acknowledged_tickets_status(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    alert_id = generic(client, "active", minute=0)["alert_id"]
    generic(client, "acknowledged", minute=1, acknowledged_by="jane")
    generic(client, "active", minute=2, severity="warning")
    work(connector_app)

    ticket = ticket_of(rest, client, alert_id)
    assert ticket is not None
    assert (ticket["status"], ticket["priority"]) == (8, MEDIUM)  # In Progress, kept


def test_an_acknowledgement_at_a_new_severity_changes_status_and_priority(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    alert_id = generic(client, "active", minute=0)["alert_id"]
    generic(client, "acknowledged", minute=1, severity="warning", acknowledged_by="jane")
    work(connector_app)

    ticket = ticket_of(rest, client, alert_id)
    assert ticket is not None
    assert (ticket["status"], ticket["priority"]) == (8, MEDIUM)
    (note,) = ticket["notes"]
    assert note.splitlines()[:2] == [
        "Alert was acknowledged.",
        "Priority changed from Critical to Medium: severity warning (was critical).",
    ]


def test_a_logicmonitor_update_with_a_new_level_changes_the_priority(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    active = json.loads((FIXTURES / "logicmonitor" / "active.json").read_text())
    active.update(level="error", properties={})
    fired = post(client, "logicmonitor", active)["accepted"][0]
    update = json.loads((FIXTURES / "logicmonitor" / "update.json").read_text())
    update.update(level="critical", properties={})
    assert update["alert_id"] == active["alert_id"]
    assert update["start_epoch"] == active["start_epoch"]  # the same alert session
    updated = post(client, "logicmonitor", update)["accepted"][0]
    work(connector_app)

    assert updated["alert_id"] == fired["alert_id"]
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["priority"] == CRITICAL
    assert [note.splitlines()[0] for note in ticket["notes"]] == [
        "Priority changed from High to Critical: severity critical (was error)."
    ]
    # De-escalation (LogicMonitor sends `update` for it too), later by ##DATE##.
    milder = dict(update, level="warn", date="2026-11-22 03:20:00 PST")
    post(client, "logicmonitor", milder)
    work(connector_app)
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["priority"] == MEDIUM


# -- identity: the source is part of it -----------------------------------------------------------


def test_one_id_from_two_sources_is_two_alerts_each_cleared_by_its_own_source(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    firing = json.loads((FIXTURES / "alertmanager" / "firing.json").read_text())
    firing["alerts"] = firing["alerts"][:1]
    shared_id = firing["alerts"][0]["fingerprint"]
    from_generic = generic(client, "active", minute=0, id=shared_id)
    from_alertmanager = post(client, "alertmanager", firing)["accepted"][0]
    work(connector_app)

    assert from_generic["alert_id"] != from_alertmanager["alert_id"]
    generic_ticket = ticket_of(rest, client, from_generic["alert_id"])
    alertmanager_ticket = ticket_of(rest, client, from_alertmanager["alert_id"])
    assert generic_ticket is not None and alertmanager_ticket is not None
    assert generic_ticket["id"] != alertmanager_ticket["id"]

    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-22T10:30:00Z")
    post(client, "alertmanager", resolved)
    work(connector_app)

    alertmanager_ticket = ticket_of(rest, client, from_alertmanager["alert_id"])
    generic_ticket = ticket_of(rest, client, from_generic["alert_id"])
    assert alertmanager_ticket is not None and alertmanager_ticket["status"] == COMPLETE
    assert generic_ticket is not None and generic_ticket["status"] == 1

    generic(client, "cleared", minute=30, id=shared_id)
    work(connector_app)
    generic_ticket = ticket_of(rest, client, from_generic["alert_id"])
    assert generic_ticket is not None and generic_ticket["status"] == COMPLETE


def test_a_new_severity_stamped_with_the_unchanged_start_is_a_change_not_a_repeat(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    """Senders that stamp each copy with the alert's start still tell a new severity."""
    body = {"id": "cpu", "status": "active", "title": "CPU busy"}
    body["started_at"] = "2026-11-22T12:00:00Z"
    fired = post(client, "generic", dict(body, severity="warning"))["accepted"][0]
    again = post(client, "generic", dict(body, severity="warning"))["accepted"][0]
    worse = post(client, "generic", dict(body, severity="critical"))["accepted"][0]
    work(connector_app)

    assert [fired["disposition"], again["disposition"], worse["disposition"]] == [
        "queued",
        "duplicate",
        "queued",
    ]
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["priority"] == CRITICAL


@pytest.mark.parametrize(
    ("started_minute", "disposition"),
    [
        pytest.param(0, "stale", id="started-before-the-clear-is-a-late-copy"),
        pytest.param(20, "queued", id="started-after-the-clear-is-a-new-firing"),
    ],
)
def test_an_active_that_names_only_its_start_is_judged_by_it_once_cleared(
    client: FlaskClient,
    connector_app: Flask,
    rest: RestClient,
    started_minute: int,
    disposition: str,
) -> None:
    fired = generic(client, "active", minute=0)
    generic(client, "cleared", minute=10)
    work(connector_app)
    copy_ = post(
        client,
        "generic",
        {
            "id": "disk-srv01",
            "status": "active",
            "severity": "critical",
            "title": "Disk full on srv01",
            "started_at": f"2026-11-22T12:{started_minute:02d}:00Z",
        },
    )["accepted"][0]
    work(connector_app)

    assert copy_["disposition"].split(":")[0] == disposition
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None
    assert (ticket["status"] == COMPLETE) is (disposition == "stale")


def test_an_update_whose_time_cannot_be_read_is_applied_in_arrival_order(
    client: FlaskClient, connector_app: Flask, rest: RestClient
) -> None:
    """LogicMonitor's ##DATE## in a zone the connector cannot place: the update still counts."""
    active = json.loads((FIXTURES / "logicmonitor" / "active.json").read_text())
    active.update(level="error", properties={})
    fired = post(client, "logicmonitor", active)["accepted"][0]
    ack = dict(active, status="ack", admin="jane", date="2026-11-22 02:10:00 PST")
    post(client, "logicmonitor", ack)
    update = dict(active, status="update", level="critical", date="2026-11-22 03:05:00 IST")
    updated = post(client, "logicmonitor", update)["accepted"][0]
    work(connector_app)

    assert updated["disposition"] == "queued"
    ticket = ticket_of(rest, client, fired["alert_id"])
    assert ticket is not None and ticket["priority"] == CRITICAL
