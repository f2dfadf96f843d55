"""Two-way close end to end: real web and worker processes, the sandbox's ticket webhooks.

The connector registers its webhook through the sandbox's REST API (`connector ticket-webhook
register`), a technician completes the ticket in the "web UI" (PATCH /_sandbox/tickets/<id>),
the sandbox calls the connector back, signed, and from then on nothing more is written to that
ticket; a fire after the alert clears opens a new one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.sandbox import Sandbox, SandboxServer
from adapters.sandbox.seed import API_USER_RESOURCE_ID
from tests.e2e.harness import CONNECTOR, Connector, alert, wait_until

pytestmark = pytest.mark.e2e

#: Autotask's Complete status (the integration's Cleared status in the test settings).
COMPLETE = 5


@pytest.fixture
def connector(
    connector_settings: dict[str, Any], sandbox_server: SandboxServer, tmp_path: Path
) -> Iterator[Connector]:
    """A running connector (web process and one worker) whose callouts the sandbox retries
    fast."""
    sandbox_server.sandbox.webhooks.retry_seconds = 0.2
    service = Connector(connector_settings, tmp_path)
    try:
        service.start_web()
        service.start_worker()
        yield service
    finally:
        service.stop()


def register(connector: Connector) -> str:
    """Run `connector ticket-webhook register` as an admin would; return what it printed."""
    done = subprocess.run(
        [*CONNECTOR, "ticket-webhook", "register", "--public-url", connector.base],
        env=connector.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


def the_alert(connector: Connector) -> dict[str, Any]:
    response = connector.api("alerts")
    assert response.status_code == 200, response.text
    (found,) = response.json()["alerts"]
    return dict(found)


def ticket_of(sandbox: Sandbox, ticket_id: int) -> dict[str, Any]:
    (found,) = [t for t in sandbox.tickets_with_notes() if t["id"] == ticket_id]
    return found


def writes_to(sandbox: Sandbox, ticket_id: int) -> list[str]:
    """The REST writes the sandbox took for the ticket: its PATCHes and its notes."""
    calls = sandbox.calls()
    return [
        f"{call.method} {call.path}"
        for call in calls
        if call.method in ("POST", "PATCH", "PUT")
        and call.status == 200
        and (
            f"/tickets/{ticket_id}/" in call.path.lower()
            or (
                call.path.lower().endswith("/tickets")
                and isinstance(call.request_body, dict)
                and call.request_body.get("id") == ticket_id
            )
        )
    ]


def test_a_ticket_completed_by_a_technician_gets_nothing_more_and_a_refire_opens_a_new_one(
    connector: Connector, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    printed = register(connector)
    (webhook,) = sandbox.webhooks.all()
    integration_id = the_integration_id(connector)
    assert webhook["webhookUrl"] == f"{connector.base}/ticket-webhooks/{integration_id}"
    assert webhook["isActive"] is True
    excluded = sandbox.webhooks.excluded_resources_of(webhook["id"])
    assert [e["resourceID"] for e in excluded] == [API_USER_RESOURCE_ID]
    assert f"leaves out resource {API_USER_RESOURCE_ID}" in printed

    # Fired and acknowledged: the connector's own writes are not called back (excluded).
    connector.post_all([alert(1, "active")])
    connector.drain(timeout=60)
    connector.post_all([alert(1, "acknowledged")])
    connector.drain(timeout=60)
    ticket_id = int(the_alert(connector)["ticket"]["ticket_id"])
    assert ticket_of(sandbox, ticket_id)["status"] == 8  # acknowledged: In Progress
    assert len(ticket_of(sandbox, ticket_id)["notes"]) == 1
    assert sandbox.webhooks.log == []

    # A technician completes it in Autotask: the connector learns it within seconds.
    changed = requests.patch(
        f"{sandbox_server.url}_sandbox/tickets/{ticket_id}", json={"status": COMPLETE}, timeout=10
    )
    assert changed.status_code == 200, changed.text
    wait_until(
        lambda: the_alert(connector)["ticket"]["state"] == "closed_remotely",
        15,
        lambda: f"the alert to show its ticket closed remotely: {the_alert(connector)['ticket']}",
    )
    shown = the_alert(connector)["ticket"]
    assert shown["closed_remotely"]["as"] == "completed"
    assert shown["closed_remotely"]["by"] == "29682887"
    assert [entry["status"] for entry in sandbox.webhooks.log] == [200]

    # Escalated, repeated, cleared: nothing more is written to that ticket.
    before = writes_to(sandbox, ticket_id)
    notes_before = len(ticket_of(sandbox, ticket_id)["notes"])
    connector.post_all([alert(1, "escalated")])
    connector.post_all([alert(1, "active", occurred_at="2026-11-22T10:30:00Z")])
    connector.post_all([alert(1, "cleared")])
    connector.drain(timeout=60)
    assert writes_to(sandbox, ticket_id) == before
    assert len(ticket_of(sandbox, ticket_id)["notes"]) == notes_before
    assert ticket_of(sandbox, ticket_id)["status"] == COMPLETE
    detail = connector.api(f"alerts/{the_alert(connector)['id']}").json()
    last_three = detail["deliveries"][-3:]
    assert [d["outcome"] for d in last_three] == ["ignored"] * 3
    assert all("closed in the ticket system" in (d["last_error"] or "") for d in last_three)

    # Fired again after the clear: a new ticket.
    connector.post_all([alert(1, "active", occurred_at="2026-11-22T11:00:00Z")])
    connector.drain(timeout=60)
    new_ticket = the_alert(connector)["ticket"]
    assert new_ticket["state"] == "open"
    assert new_ticket["episode"] == 2
    assert new_ticket["ticket_id"] != ticket_id
    assert len(sandbox.tickets_with_notes()) == 2


def test_a_ticket_deleted_in_autotask_is_closed_and_a_forged_callout_is_refused(
    connector: Connector, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    register(connector)
    integration_id = the_integration_id(connector)
    connector.post_all([alert(2, "active")])
    connector.drain(timeout=60)
    ticket_id = int(the_alert(connector)["ticket"]["ticket_id"])

    forged = requests.post(
        f"{connector.base}/ticket-webhooks/{integration_id}",
        json={"Action": "Delete", "EntityType": "Ticket", "Id": ticket_id},
        headers={"X-Hook-Signature": "sha1=AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        timeout=10,
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["message"] == (
        "the X-Hook-Signature signature does not match the body"
    )
    assert the_alert(connector)["ticket"]["state"] == "open"

    deleted = requests.delete(f"{sandbox_server.url}_sandbox/tickets/{ticket_id}", timeout=10)
    assert deleted.status_code == 200, deleted.text
    wait_until(
        lambda: (the_alert(connector)["ticket"]["closed_remotely"] or {}).get("as") == "deleted",
        15,
        lambda: f"the alert to show its ticket deleted: {the_alert(connector)['ticket']}",
    )
    connector.post_all([alert(2, "acknowledged")])
    connector.drain(timeout=60)
    assert [c for c in sandbox.calls() if f"/tickets/{ticket_id}" in c.path.lower()] == []


def the_integration_id(connector: Connector) -> int:
    response = connector.api("integrations")
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["integrations"] if isinstance(body, dict) else body
    (found,) = items
    return int(found["id"])
