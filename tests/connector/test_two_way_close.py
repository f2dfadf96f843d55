"""Two-way close: a ticket a person completes or deletes in the ticket system gets nothing more.

The callout endpoint (POST /ticket-webhooks/<integration id>) verified and refused, the ticket
link closed by it, the planner and the worker leaving such a ticket alone, and a fire after the
clear opening a new ticket. The worker runs against test_worker's in-memory target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    LifecyclePolicy,
    Outcome,
    Severity,
    StepKind,
    TicketSnapshot,
    TicketState,
)
from connector.integrations.ticket_webhooks import callout_url, save_ticket_webhook
from connector.persistence.models import TicketLink, TicketWebhook
from connector.pipeline import planner
from connector.pipeline.worker import Worker
from connector.services import Services
from tests import canaries
from tests.conftest import API_TOKEN, default_integration_id, error_of
from tests.connector import test_worker
from tests.connector.test_planner import POLICY
from tests.connector.test_worker import Clock, FakeTarget, deliveries, drain, post

# The worker's fixtures: an in-memory ticket target, a settable clock, workers over both.
fake = test_worker.fake
clock = test_worker.clock
services = test_worker.services
make_worker = test_worker.make_worker

SECRET = canaries.TICKET_WEBHOOK_SECRET
COMPLETE = 5
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

# -- the planner ----------------------------------------------------------------------------------


def event(status: AlertStatus) -> IncomingAlert:
    return IncomingAlert("generic", "a", status, Severity.ERROR, "Disk full")


@pytest.mark.parametrize(
    ("status", "applied", "outcome", "creates"),
    [
        (AlertStatus.ACTIVE, AlertStatus.ACTIVE, Outcome.IGNORED, False),
        (AlertStatus.ACKNOWLEDGED, AlertStatus.ACTIVE, Outcome.IGNORED, False),
        (AlertStatus.ESCALATED, AlertStatus.ACKNOWLEDGED, Outcome.IGNORED, False),
        (AlertStatus.CLEARED, AlertStatus.ACTIVE, Outcome.IGNORED, False),
        (AlertStatus.CLEARED, AlertStatus.CLEARED, Outcome.IGNORED, False),
        # Cleared since the ticket was closed there: a fire (or an acknowledgement) is new.
        (AlertStatus.ACTIVE, AlertStatus.CLEARED, Outcome.CREATED, True),
        (AlertStatus.ACKNOWLEDGED, AlertStatus.CLEARED, Outcome.CREATED, True),
    ],
)
def test_the_planner_writes_nothing_to_a_ticket_closed_in_the_ticket_system(
    status: AlertStatus, applied: AlertStatus, outcome: Outcome, creates: bool
) -> None:
    ticket = TicketSnapshot(
        TicketState.CLOSED_REMOTELY, ticket_id=7, applied_status=applied, completed_at=NOW
    )
    policy = LifecyclePolicy(status_map=POLICY.status_map)
    decided = planner.plan(event(status), ticket, policy, NOW + timedelta(seconds=1))
    assert decided.outcome is outcome
    if creates:
        assert decided.new_episode
        assert decided.steps[0].kind is StepKind.CREATE
    else:
        assert decided.steps == ()
        assert decided.reason == planner.CLOSED_REMOTELY_REASON


# -- the callout endpoint -------------------------------------------------------------------------


def signature(body: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode()


def callout_body(ticket_id: int, action: str = "Update", **fields: Any) -> bytes:
    return json.dumps(
        {
            "Action": action,
            "Guid": "6f1c",
            "EntityType": "Ticket",
            "Id": ticket_id,
            "Fields": fields,
            "EventTime": datetime.now(UTC).isoformat(),
            "SequenceNumber": 1,
            "PersonID": 29682887,
        }
    ).encode()


def send_callout(
    client: FlaskClient, integration_id: int, body: bytes, sign: str | None = None
) -> TestResponse:
    headers = {"Content-Type": "application/json"}
    headers["X-Hook-Signature"] = sign if sign is not None else signature(body)
    return client.post(f"/ticket-webhooks/{integration_id}", data=body, headers=headers)


def register(app: Flask, secret: str = SECRET) -> int:
    """Store a ticket webhook for the default integration, as registration would."""
    found: Services = app.extensions["connector"]
    integration_id = default_integration_id(app)
    with found.transaction() as session:
        save_ticket_webhook(
            session,
            found.secret_box(),
            integration_id,
            url=callout_url("https://alerts.example.net/", integration_id),
            secret=secret,
            remote_id=3,
        )
    return integration_id


def test_the_secret_is_stored_encrypted(connector_app: Flask) -> None:
    register(connector_app)
    with connector_app.extensions["connector"].sessions() as session:
        stored = session.scalars(select(TicketWebhook)).one()
    assert SECRET not in stored.secret_encrypted
    assert stored.url == f"https://alerts.example.net/ticket-webhooks/{stored.integration_id}"


@pytest.mark.parametrize(
    ("sign", "status", "message"),
    [
        ("", 401, "the callout has no X-Hook-Signature header"),
        ("sha1", 401, "the X-Hook-Signature header is not sha1=<base64 HMAC>"),
        ("sha1=%%%", 401, "the X-Hook-Signature header's HMAC is not base64"),
        ("wrong secret", 401, "the X-Hook-Signature signature does not match the body"),
    ],
)
def test_a_callout_without_a_valid_signature_is_a_401(
    client: FlaskClient, connector_app: Flask, sign: str, status: int, message: str
) -> None:
    integration_id = register(connector_app)
    body = callout_body(1, status=COMPLETE)
    presented = signature(body, "another secret") if sign == "wrong secret" else sign
    error = error_of(send_callout(client, integration_id, body, presented), status)
    assert error["message"] == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the callout body is not JSON"),
        (json.dumps({"Action": "Update", "EntityType": "Contact", "Id": 1}).encode(), "ticket"),
    ],
)
def test_a_signed_callout_that_cannot_be_read_is_a_400(
    client: FlaskClient, connector_app: Flask, body: bytes, message: str
) -> None:
    integration_id = register(connector_app)
    assert message in error_of(send_callout(client, integration_id, body), 400)["message"]


def test_an_integration_without_a_webhook_is_a_401_like_a_bad_signature(
    client: FlaskClient, connector_app: Flask
) -> None:
    """Nothing tells an unknown sender which integrations have a webhook (issue 15)."""
    integration_id = default_integration_id(connector_app)
    without = error_of(send_callout(client, integration_id, callout_body(1)), 401)
    unknown = error_of(send_callout(client, 999_999, callout_body(1)), 401)
    registered = register(connector_app, secret=canaries.OTHER_TICKET_WEBHOOK_SECRET)
    wrong = error_of(send_callout(client, registered, callout_body(1)), 401)
    messages = {answer["message"] for answer in (without, unknown, wrong)}
    assert messages == {wrong["message"]}, messages
    assert "does not match the body" in wrong["message"]


def test_an_oversized_callout_is_a_413_before_anything_is_read(
    client: FlaskClient, connector_app: Flask
) -> None:
    integration_id = register(connector_app)
    body = b"{" + b" " * 70_000 + b"}"
    error = error_of(send_callout(client, integration_id, body), 413)
    assert "65536 bytes" in error["message"]


def test_a_callout_about_an_unknown_ticket_changes_nothing(
    client: FlaskClient, connector_app: Flask
) -> None:
    integration_id = register(connector_app)
    response = send_callout(client, integration_id, callout_body(424242, status=COMPLETE))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["result"].startswith("ignored: ticket 424242 is none")


def test_a_deactivation_is_recorded(client: FlaskClient, connector_app: Flask) -> None:
    integration_id = register(connector_app)
    body = json.dumps({"Action": "Deactivated", "Guid": "x"}).encode()
    response = send_callout(client, integration_id, body)
    assert response.status_code == 200
    with connector_app.extensions["connector"].sessions() as session:
        assert session.scalars(select(TicketWebhook)).one().deactivated_at is not None


# -- in one process: the webhook, the worker, the callout ----------------------------------------


def link_of(of: Services) -> TicketLink:
    with of.transaction() as session:
        links = list(session.scalars(select(TicketLink).order_by(TicketLink.id)))
        return links[-1]


def alert_view(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200
    (item,) = response.get_json()["alerts"]
    return dict(item["ticket"])


def test_a_ticket_completed_in_the_ticket_system_gets_no_more_writes_and_a_refire_opens_a_new_one(
    client: FlaskClient,
    connector_app: Flask,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    integration_id = register(connector_app)
    worker = make_worker()
    post(client, "a", "active")
    drain(worker, clock)
    (ticket,) = fake.tickets.values()
    response = send_callout(client, integration_id, callout_body(ticket.ticket_id, status=5))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["result"] == "closed: completed in the ticket system"
    view = alert_view(client)
    assert view["state"] == "closed_remotely"
    assert view["closed_remotely"]["as"] == "completed"
    assert view["closed_remotely"]["by"] == "29682887"

    post(client, "a", "acknowledged", acknowledged_by="jane")
    post(client, "a", "active", occurred_at="2026-12-03T12:30:00Z")
    post(client, "a", "cleared")
    drain(worker, clock)
    assert ticket.history == ["create"]
    assert fake.calls == ["create"]
    finished = deliveries(services)[1:]
    assert [d.outcome for d in finished] == ["ignored"] * 3
    assert all("closed in the ticket system" in (d.last_error or "") for d in finished)

    post(client, "a", "active", occurred_at="2026-12-03T13:00:00Z")
    drain(worker, clock)
    assert len(fake.tickets) == 2
    assert (link_of(services).episode, link_of(services).state) == (2, "open")


def test_a_delivery_planned_before_the_close_stops_before_its_next_write(
    client: FlaskClient,
    connector_app: Flask,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    from connector.errors import TargetUnavailable

    integration_id = register(connector_app)
    worker = make_worker()
    post(client, "a", "active")
    drain(worker, clock)
    (ticket,) = fake.tickets.values()
    fake.fail["status"] = [TargetUnavailable("Autotask answered 503")]
    post(client, "a", "acknowledged", acknowledged_by="jane")
    worker.run_once()  # planned (status, note); the status change failed and waits
    ack = deliveries(services)[1]
    assert (ack.state, ack.plan is not None) == ("pending", True)
    send_callout(client, integration_id, callout_body(ticket.ticket_id, status=COMPLETE))
    drain(worker, clock)
    ack = deliveries(services)[1]
    assert (ack.state, ack.outcome) == ("done", "ignored")
    assert "closed in the ticket system" in (ack.last_error or "")
    assert ticket.history == ["create"]


def test_a_deleted_ticket_is_closed_and_a_reopened_one_is_open_again(
    client: FlaskClient,
    connector_app: Flask,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    integration_id = register(connector_app)
    worker = make_worker()
    post(client, "a", "active")
    drain(worker, clock)
    (ticket,) = fake.tickets.values()
    send_callout(client, integration_id, callout_body(ticket.ticket_id, status=COMPLETE))
    reopened = send_callout(client, integration_id, callout_body(ticket.ticket_id, status=1))
    assert reopened.get_json()["result"] == "reopened: the ticket was reopened in the ticket system"
    assert link_of(services).state == "open"
    post(client, "a", "acknowledged", acknowledged_by="jane")
    drain(worker, clock)
    assert ticket.history == ["create", "status 8", "note"]

    deleted = send_callout(client, integration_id, callout_body(ticket.ticket_id, "Delete"))
    assert deleted.get_json()["result"] == "closed: deleted in the ticket system"
    link = link_of(services)
    assert (link.state, link.closed_remotely_as) == ("closed_remotely", "deleted")
    again = send_callout(client, integration_id, callout_body(ticket.ticket_id, status=1))
    assert again.get_json()["result"] == "ignored: the ticket is closed_remotely"


def test_the_connectors_own_completion_echoed_back_changes_nothing(
    client: FlaskClient,
    connector_app: Flask,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    integration_id = register(connector_app)
    worker = make_worker()
    post(client, "a", "active")
    post(client, "a", "cleared")
    drain(worker, clock)
    (ticket,) = fake.tickets.values()
    echo = send_callout(client, integration_id, callout_body(ticket.ticket_id, status=COMPLETE))
    assert echo.get_json()["result"] == "ignored: the ticket is already completed"
    assert link_of(services).state == "completed"


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://alerts.example.net", "https://alerts.example.net/ticket-webhooks/7"),
        ("https://alerts.example.net/base/ ", "https://alerts.example.net/base/ticket-webhooks/7"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/ticket-webhooks/7"),
        ("", None),
        ("alerts.example.net", None),
    ],
)
def test_the_callout_url_is_under_the_public_address(public_url: str, expected: str | None) -> None:
    from connector.errors import InvalidInput

    if expected is None:
        with pytest.raises(InvalidInput, match="set PUBLIC_URL or pass --public-url"):
            callout_url(public_url, 7)
    else:
        assert callout_url(public_url, 7) == expected


def test_a_close_between_two_steps_stops_the_delivery_before_the_second(
    client: FlaskClient,
    connector_app: Flask,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration_id = register(connector_app)
    worker = make_worker()
    post(client, "a", "active")
    drain(worker, clock)
    (ticket,) = fake.tickets.values()
    send = fake.send

    def completed_meanwhile(request: Any) -> Any:
        # A technician completes the ticket while the acknowledgement's status change is sent.
        answer = send(request)
        if request.method == "PATCH":
            body = callout_body(ticket.ticket_id, status=COMPLETE)
            assert send_callout(client, integration_id, body).status_code == 200
        return answer

    monkeypatch.setattr(fake, "send", completed_meanwhile)
    post(client, "a", "acknowledged", acknowledged_by="jane")
    drain(worker, clock)
    assert ticket.history == ["create", "status 8"]  # the note never went
    ack = deliveries(services)[1]
    assert (ack.state, ack.outcome) == ("done", "ignored")
    assert (ack.last_error or "").startswith("stopped after 1 of 2 steps: the ticket was closed")
    link = link_of(services)
    assert (link.state, link.ticket_status) == ("closed_remotely", COMPLETE)


def test_the_signature_header_and_algorithm_are_settings(
    connector_settings: dict[str, object],
) -> None:
    from connector import create_app
    from connector.cli import prepare_database

    app = create_app(
        {
            **connector_settings,
            "TICKET_WEBHOOK_SIGNATURE_HEADER": "X-Signature",
            "TICKET_WEBHOOK_SIGNATURE_ALGORITHM": "sha256",
        }
    )
    try:
        prepare_database(app.extensions["connector"])
        integration_id = register(app)
        client = app.test_client()
        body = callout_body(1, status=COMPLETE)
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        good = "sha256=" + base64.b64encode(digest).decode()
        accepted = client.post(
            f"/ticket-webhooks/{integration_id}", data=body, headers={"X-Signature": good}
        )
        assert accepted.status_code == 200, accepted.get_data(as_text=True)
        # Autotask's own header no longer counts.
        refused = send_callout(client, integration_id, body)
        assert error_of(refused, 401)["message"] == "the callout has no X-Signature header"
    finally:
        app.extensions["connector"].dispose()


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("TICKET_WEBHOOK_SIGNATURE_ALGORITHM", "md5", "must be sha1, sha256 or empty"),
        ("TICKET_WEBHOOK_SIGNATURE_HEADER", "X Sig", "must not contain whitespace"),
        ("TICKET_WEBHOOK_MAX_BYTES", 0, "TICKET_WEBHOOK_MAX_BYTES"),
    ],
)
def test_bad_ticket_webhook_settings_are_refused_at_start(
    setting: str, value: object, words: str
) -> None:
    from connector.config import load_settings
    from connector.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        load_settings({setting: value})
