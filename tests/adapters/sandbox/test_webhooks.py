"""The sandbox's ticket webhooks: registration over REST, signed callouts on changes, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from adapters.sandbox import Sandbox, SandboxServer
from adapters.sandbox.seed import API_USER_RESOURCE_ID
from tests import canaries
from tests.conftest import RestClient
from tests.e2e.harness import wait_until

SECRET = canaries.TICKET_WEBHOOK_SECRET
STATUS_FIELD = 1  # the sandbox's fieldID of the ticket's status
EXTERNAL_ID_FIELD = 5


class Receiver:
    """A local HTTP server that records every POST and answers the statuses it is told to."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        #: Statuses to answer, first to last; 200 once they run out.
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    made.thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()


@pytest.fixture
def fast_sandbox(sandbox: Sandbox) -> Sandbox:
    sandbox.webhooks.retry_seconds = 0.05
    return sandbox


def register(rest: RestClient, url: str, *, exclude: int | None = None) -> int:
    """Register an active ticket webhook on status (and externalID always) over REST."""
    response = rest.post(
        "TicketWebhooks",
        json={
            "name": "alerts",
            "webhookUrl": url,
            "deactivationUrl": url,
            "secretKey": SECRET,
            "isActive": True,
            "isSubscribedToUpdateEvents": True,
            "isSubscribedToDeleteEvents": True,
        },
    )
    assert response.status_code == 200, response.text
    webhook_id = int(response.json()["itemId"])
    for field in (
        {"fieldID": STATUS_FIELD},
        {"fieldID": EXTERNAL_ID_FIELD, "isDisplayAlwaysField": True, "isSubscribedField": False},
    ):
        answer = rest.post(f"TicketWebhooks/{webhook_id}/Fields", json=field)
        assert answer.status_code == 200, answer.text
    if exclude is not None:
        answer = rest.post(
            f"TicketWebhooks/{webhook_id}/ExcludedResources", json={"resourceID": exclude}
        )
        assert answer.status_code == 200, answer.text
    return webhook_id


def technician_patch(server: SandboxServer, ticket_id: int, **changes: Any) -> requests.Response:
    return requests.patch(f"{server.url}_sandbox/tickets/{ticket_id}", json=changes, timeout=10)


def test_registration_reads_back_without_its_secret(
    rest: RestClient, fast_sandbox: Sandbox, receiver: Receiver
) -> None:
    webhook_id = register(rest, receiver.url, exclude=API_USER_RESOURCE_ID)
    item = rest.get(f"TicketWebhooks/{webhook_id}").json()["item"]
    assert item["webhookUrl"] == receiver.url
    assert item["isActive"] is True
    assert item["secretKey"] is None
    assert item["webhookGUID"]
    fields = rest.get(f"TicketWebhooks/{webhook_id}/Fields").json()["items"]
    assert [f["fieldID"] for f in fields] == [STATUS_FIELD, EXTERNAL_ID_FIELD]
    excluded = rest.get(f"TicketWebhooks/{webhook_id}/ExcludedResources").json()["items"]
    assert [e["resourceID"] for e in excluded] == [API_USER_RESOURCE_ID]
    found = rest.post(
        "TicketWebhooks/query",
        json={"filter": [{"op": "eq", "field": "webhookUrl", "value": receiver.url}]},
    ).json()["items"]
    assert [f["id"] for f in found] == [webhook_id]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "x", "webhookUrl": "http://h/", "deactivationUrl": "http://h/"},
            "secretKey is required.",
        ),
        (
            {
                "name": "x",
                "webhookUrl": "http://h/",
                "deactivationUrl": "http://h/",
                "secretKey": "k" * 65,
            },
            "String value exceeds maximum length (field:secretKey).",
        ),
        ({"name": "x", "bogus": 1}, "Unable to find bogus in the TicketWebhook Entity"),
        ({"name": "x", "isActive": "yes"}, "Invalid value 'yes' for field isActive."),
    ],
)
def test_an_invalid_webhook_is_refused(
    rest: RestClient, body: dict[str, Any], message: str
) -> None:
    response = rest.post("TicketWebhooks", json=body)
    assert response.status_code == 500
    assert response.json() == {"errors": [message]}


def test_a_technician_completing_a_ticket_fires_a_signed_callout(
    rest: RestClient, fast_sandbox: Sandbox, sandbox_server: SandboxServer, receiver: Receiver
) -> None:
    register(rest, receiver.url, exclude=API_USER_RESOURCE_ID)
    ticket_id = rest.create_ticket(externalID="aac-1")
    response = technician_patch(sandbox_server, ticket_id, status=5)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == 5
    wait_until(lambda: len(receiver.received) == 1, 10, "one callout")
    headers, raw = receiver.received[0]
    expected = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha1).digest()).decode()
    assert headers["X-Hook-Signature"] == f"sha1={expected}"
    body = json.loads(raw)
    assert set(body) == {
        "Action",
        "Guid",
        "EntityType",
        "Id",
        "Fields",
        "EventTime",
        "SequenceNumber",
        "PersonID",
    }
    assert body["Action"] == "Update"
    assert body["Id"] == ticket_id
    assert body["Fields"] == {"status": 5, "externalID": "aac-1"}
    assert body["PersonID"] == 29682887


def test_changes_by_an_excluded_resource_and_unsubscribed_fields_fire_nothing(
    rest: RestClient, fast_sandbox: Sandbox, sandbox_server: SandboxServer, receiver: Receiver
) -> None:
    register(rest, receiver.url, exclude=API_USER_RESOURCE_ID)
    ticket_id = rest.create_ticket()
    assert rest.patch("Tickets", json={"id": ticket_id, "status": 5}).status_code == 200
    assert technician_patch(sandbox_server, ticket_id, title="renamed").status_code == 200
    # A change that does fire comes after both: once it arrives, the others would have too.
    assert technician_patch(sandbox_server, ticket_id, status=1).status_code == 200
    wait_until(lambda: len(receiver.received) >= 1, 10, "the technician's callout")
    assert [b["Fields"]["status"] for b in receiver.bodies()] == [1]


def test_the_api_users_own_changes_fire_unless_excluded(
    rest: RestClient, fast_sandbox: Sandbox, receiver: Receiver
) -> None:
    register(rest, receiver.url)
    ticket_id = rest.create_ticket()
    assert rest.patch("Tickets", json={"id": ticket_id, "status": 5}).status_code == 200
    wait_until(lambda: len(receiver.received) == 1, 10, "the API user's callout")
    assert receiver.bodies()[0]["PersonID"] == API_USER_RESOURCE_ID


def test_a_failed_callout_is_retried_then_dropped_and_later_ones_keep_their_order(
    rest: RestClient, fast_sandbox: Sandbox, sandbox_server: SandboxServer, receiver: Receiver
) -> None:
    register(rest, receiver.url, exclude=API_USER_RESOURCE_ID)
    ticket_id = rest.create_ticket()
    receiver.statuses = [500, 503, 500, 500, 500, 500, 200]
    technician_patch(sandbox_server, ticket_id, status=5)
    technician_patch(sandbox_server, ticket_id, status=1)
    wait_until(lambda: len(receiver.received) == 7, 20, "five attempts, then the next event")
    sequences = [b["SequenceNumber"] for b in receiver.bodies()]
    assert sequences == [sequences[0]] * 5 + [sequences[0] + 1] * 2
    log = requests.get(f"{sandbox_server.url}_sandbox/webhooks", timeout=10).json()["callouts"]
    assert [entry["attempt"] for entry in log] == [1, 2, 3, 4, 5, 1, 2]


def test_deleting_a_ticket_fires_a_delete(
    rest: RestClient, fast_sandbox: Sandbox, sandbox_server: SandboxServer, receiver: Receiver
) -> None:
    register(rest, receiver.url, exclude=API_USER_RESOURCE_ID)
    ticket_id = rest.create_ticket()
    response = requests.delete(f"{sandbox_server.url}_sandbox/tickets/{ticket_id}", timeout=10)
    assert response.status_code == 200, response.text
    wait_until(lambda: len(receiver.received) == 1, 10, "the delete callout")
    assert receiver.bodies()[0]["Action"] == "Delete"
    assert rest.get(f"Tickets/{ticket_id}").json()["item"] is None


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ([1], 400), ({"status": 5, "personID": "x"}, 400), ({"bogus": 1}, 400)],
)
def test_a_bad_technician_change_is_a_400(
    rest: RestClient, sandbox_server: SandboxServer, body: Any, status: int
) -> None:
    ticket_id = rest.create_ticket()
    response = requests.patch(
        f"{sandbox_server.url}_sandbox/tickets/{ticket_id}", json=body, timeout=10
    )
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_changing_a_missing_ticket_is_a_404(sandbox_server: SandboxServer) -> None:
    response = technician_patch(sandbox_server, 1, status=5)
    assert response.status_code == 404


def test_a_technicians_change_is_no_api_call_and_ignores_the_api_users_permissions(
    rest: RestClient, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    ticket_id = rest.create_ticket()
    denied = requests.post(
        f"{sandbox_server.url}_sandbox/permissions", json={"Tickets": ["update"]}, timeout=10
    )
    assert denied.status_code == 200, denied.text
    calls_before = len(sandbox.calls())
    usage_before = sandbox.limits.usage()
    assert technician_patch(sandbox_server, ticket_id, status=5).status_code == 200
    assert len(sandbox.calls()) == calls_before
    assert sandbox.limits.usage() == usage_before
    assert rest.patch("Tickets", json={"id": ticket_id, "status": 1}).status_code != 200
