"""Active or inactive: an inactive integration keeps its events and holds its deliveries, which
no worker claims; activating it delivers what it kept in the last 48 hours, or skips it, as the
admin chooses (POST /api/v1/integrations/<id>/deactivate, GET …/activation, POST …/activate).

Against the sandbox over HTTP, with the real worker, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from adapters.sandbox import Sandbox
from connector.persistence.models import Delivery, utcnow
from connector.pipeline.worker import Worker
from connector.services import Services
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id, error_of

API = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def integration_id(connector_app: Flask) -> int:
    return default_integration_id(connector_app)


def post_alert(client: FlaskClient, fingerprint: str, status: str, **extra: Any) -> dict[str, Any]:
    """One generic alert through the webhook; its entry of the 202's `accepted`."""
    body = {
        "id": fingerprint,
        "status": status,
        "severity": "error",
        "title": f"Alert {fingerprint}",
    }
    body.update(extra)
    response = client.post(
        "/hooks/generic", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 202, response.get_json()
    (accepted,) = response.get_json()["accepted"]
    return dict(accepted)


def api(client: FlaskClient, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = client.open(f"/api/v1/{path}", method=method, json=body, headers=API)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def deliveries(services: Services) -> list[Delivery]:
    with services.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def drain(services: Services, rounds: int = 40) -> int:
    """Run a worker until it finds nothing to do; how many deliveries it processed."""
    worker = Worker(services, worker_id="test-worker")
    processed = 0
    for _ in range(rounds):
        done = worker.run_once()
        if not done:
            break
        processed += done
    return processed


def titles(sandbox: Sandbox) -> list[str]:
    return sorted(ticket["title"] for ticket in sandbox.tickets_with_notes())


def test_an_inactive_integration_keeps_its_events_and_holds_its_deliveries(
    client: FlaskClient, services: Services, sandbox: Sandbox, integration_id: int
) -> None:
    answer = api(client, "POST", f"integrations/{integration_id}/deactivate")
    assert answer["active"] is False and answer["deactivated_at"]
    shown = api(client, "GET", f"integrations/{integration_id}")
    assert (shown["active"], shown["deactivated_at"]) == (False, answer["deactivated_at"])

    accepted = post_alert(client, "disk-srv01", "active", occurred_at="2026-11-22T10:00:05Z")
    assert accepted["disposition"].startswith("held: the integration is inactive")
    # A repeat is recorded as such and gets no second delivery, as when active.
    repeat = post_alert(client, "disk-srv01", "active", occurred_at="2026-11-22T10:00:05Z")
    assert repeat["disposition"] == "duplicate"

    assert drain(services) == 0  # the worker claims nothing of an inactive integration
    assert titles(sandbox) == []
    (held,) = deliveries(services)
    assert (held.state, held.attempts, held.outcome) == ("held", 0, None)
    listed = api(client, "GET", "deliveries?state=held")["deliveries"]
    assert [d["id"] for d in listed] == [held.id]
    alert = api(client, "GET", f"alerts/{accepted['alert_id']}")
    assert [e["disposition"][:4] for e in alert["events"]] == ["held", "dupl"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'connector_deliveries{state="held"} 1.0' in metrics


def test_deactivating_holds_the_deliveries_still_waiting(
    client: FlaskClient, services: Services, integration_id: int
) -> None:
    post_alert(client, "cpu-srv02", "active")
    assert [d.state for d in deliveries(services)] == ["pending"]
    answer = api(client, "POST", f"integrations/{integration_id}/deactivate")
    assert answer["held_now"] == 1
    assert [d.state for d in deliveries(services)] == ["held"]
    # Deactivating twice keeps the first time.
    again = api(client, "POST", f"integrations/{integration_id}/deactivate")
    assert (again["held_now"], again["deactivated_at"]) == (0, answer["deactivated_at"])


def test_activation_counts_then_delivers_the_last_48_hours_and_skips_older(
    client: FlaskClient, services: Services, sandbox: Sandbox, integration_id: int
) -> None:
    api(client, "POST", f"integrations/{integration_id}/deactivate")
    post_alert(client, "fired", "active")
    post_alert(client, "fired-and-cleared", "active")
    post_alert(client, "fired-and-cleared", "cleared")
    post_alert(client, "acknowledged-only", "acknowledged", note="on it", actor="sam")
    post_alert(client, "cleared-only", "cleared")
    old = post_alert(client, "three-days-ago", "active")
    with services.transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.alert_id == old["alert_id"])
            .values(created_at=utcnow() - timedelta(hours=72))
        )

    counts = api(client, "GET", f"integrations/{integration_id}/activation")
    assert counts["active"] is False
    assert counts["held_last_48_hours"] == 5
    # Every alert but the one only cleared (no ticket to complete) gets a ticket.
    assert counts["tickets_to_create"] == 3
    assert counts["held_older"] == 1

    done = api(client, "POST", f"integrations/{integration_id}/activate", {"backfill": True})
    assert (done["active"], done["delivered"], done["skipped"]) == (True, 5, 1)
    assert done["held_last_48_hours"] == 0
    drain(services)
    tickets = titles(sandbox)
    assert tickets == ["Alert acknowledged-only", "Alert fired", "Alert fired-and-cleared"]
    assert len(tickets) == counts["tickets_to_create"]
    by_alert = {d.alert_id: d for d in deliveries(services)}
    skipped = by_alert[old["alert_id"]]
    assert (skipped.state, skipped.outcome) == ("done", "skipped")
    assert "older than 48 hours" in (skipped.last_error or "")
    assert not [d for d in deliveries(services) if d.state in ("held", "pending")]


def test_activating_without_them_finishes_every_held_delivery_as_skipped(
    client: FlaskClient, services: Services, sandbox: Sandbox, integration_id: int
) -> None:
    api(client, "POST", f"integrations/{integration_id}/deactivate")
    post_alert(client, "quiet", "active")
    done = api(client, "POST", f"integrations/{integration_id}/activate", {"backfill": False})
    assert (done["delivered"], done["skipped"]) == (0, 1)
    assert drain(services) == 0
    assert titles(sandbox) == []
    listed = api(client, "GET", "deliveries?outcome=skipped")["deliveries"]
    assert len(listed) == 1 and listed[0]["state"] == "done"
    assert "activated without delivering" in listed[0]["last_error"]

    # Active again: the next alert is delivered as usual.
    assert post_alert(client, "loud", "active")["disposition"] == "queued"
    drain(services)
    assert titles(sandbox) == ["Alert loud"]


def test_a_replayed_dead_letter_waits_while_the_integration_is_inactive(
    client: FlaskClient, services: Services, integration_id: int
) -> None:
    post_alert(client, "dead", "active")
    with services.transaction() as session:
        session.execute(update(Delivery).values(state="dead", outcome="failed"))
    api(client, "POST", f"integrations/{integration_id}/deactivate")
    (delivery,) = deliveries(services)
    assert api(client, "POST", f"deliveries/{delivery.id}/replay")["state"] == "pending"
    assert drain(services) == 0  # not claimed while inactive
    api(client, "POST", f"integrations/{integration_id}/activate", {"backfill": False})
    assert drain(services) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (None, "must be a JSON object"),
        ({}, "backfill: Missing data"),
        ({"backfill": "yes"}, "backfill: Not a valid boolean"),
        ({"backfill": True, "x": 1}, "x: Unknown field"),
    ],
)
def test_activate_needs_the_choice(
    client: FlaskClient, integration_id: int, body: Any, says: str
) -> None:
    response = client.post(
        f"/api/v1/integrations/{integration_id}/activate", json=body, headers=API
    )
    assert says in error_of(response, 400)["message"]
    assert api(client, "GET", f"integrations/{integration_id}")["active"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unknown_integration_is_a_404(client: FlaskClient) -> None:
    for method, path in (
        ("POST", "deactivate"),
        ("GET", "activation"),
        ("POST", "activate"),
    ):
        body = {"backfill": True} if path == "activate" else None
        response = client.open(
            f"/api/v1/integrations/999/{path}", method=method, json=body, headers=API
        )
        error_of(response, 404)
