"""Reconciliation with the ticket system: open tickets completed or deleted there, whose webhook
callout never came, are closed; the others are left open. Against the real sandbox, REST and SOAP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import SandboxServer
from connector.persistence.models import ApiCall, TicketLink
from connector.pipeline.reconcile import reconcile_tickets
from connector.wiring import make_worker
from tests.conftest import HOOK_TOKEN

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
COMPLETE = 5


@pytest.fixture(params=["rest", "soap"])
def api_flavour(request: pytest.FixtureRequest) -> str:
    """Both APIs (the SOAP query ORs the ids; REST asks `id in […]`)."""
    return str(request.param)


def tickets_for(app: Flask, client: FlaskClient, count: int) -> list[int]:
    """`count` alerts fired and delivered: their tickets' ids, in alert order."""
    for index in range(count):
        alert = {
            "id": f"rt-{index}",
            "status": "active",
            "severity": "critical",
            "title": f"RT {index}",
        }
        answer = client.post(
            "/hooks/generic", json=alert, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
        )
        assert answer.status_code == 202
    worker = make_worker(app.extensions["connector"])
    for _ in range(count + 5):
        if not worker.run_once():
            break
    with app.extensions["connector"].transaction() as session:
        ids = session.scalars(select(TicketLink.ticket_id).order_by(TicketLink.id)).all()
    assert len(ids) == count and all(ids)
    return [int(i) for i in ids if i is not None]


def links(app: Flask) -> dict[int, tuple[str, str | None, bool]]:
    """Per ticket: its link's state, how it was closed there, and whether it was asked about."""
    with app.extensions["connector"].transaction() as session:
        return {
            int(link.ticket_id or 0): (
                link.state,
                link.closed_remotely_as,
                link.checked_at is not None,
            )
            for link in session.scalars(select(TicketLink))
        }


def as_technician(sandbox_server: SandboxServer, method: str, ticket_id: int, **body: Any) -> None:
    """Change a ticket in the sandbox as a person would (no webhook is registered here)."""
    answer = requests.request(
        method, f"{sandbox_server.url}_sandbox/tickets/{ticket_id}", json=body or None, timeout=10
    )
    assert answer.status_code == 200, answer.text


def test_tickets_completed_or_deleted_in_autotask_are_closed_and_the_rest_stay_open(
    connector_app: Flask, client: FlaskClient, sandbox_server: SandboxServer
) -> None:
    completed, deleted, untouched = tickets_for(connector_app, client, 3)
    as_technician(sandbox_server, "PATCH", completed, status=COMPLETE)
    as_technician(sandbox_server, "DELETE", deleted)
    services = connector_app.extensions["connector"]
    with services.transaction() as session:
        calls_before = len(session.scalars(select(ApiCall.id)).all())

    assert reconcile_tickets(services, NOW) == {"1/tickets": 2}

    assert links(connector_app) == {
        completed: ("closed_remotely", "completed", True),
        deleted: ("closed_remotely", "deleted", True),
        untouched: ("open", None, True),
    }
    with services.transaction() as session:
        calls = session.scalars(select(ApiCall).order_by(ApiCall.id)).all()[calls_before:]
    assert len(calls) == 1  # the three tickets in one counted call
    # A second run finds nothing more to close.
    assert reconcile_tickets(services, NOW) == {"1/tickets": 0}


def test_only_so_many_tickets_per_run_least_recently_asked_first(
    connector_app: Flask, client: FlaskClient, sandbox_server: SandboxServer
) -> None:
    first, second, third = tickets_for(connector_app, client, 3)
    services = connector_app.extensions["connector"]
    services.settings["RECONCILE_TICKETS_PER_RUN"] = 2
    reconcile_tickets(services, NOW)
    assert {t for t, (_, _, asked) in links(connector_app).items() if asked} == {first, second}
    as_technician(sandbox_server, "PATCH", third, status=COMPLETE)
    assert reconcile_tickets(services, NOW) == {"1/tickets": 1}
    assert links(connector_app)[third] == ("closed_remotely", "completed", True)
