"""The worker against an in-memory ticket target, on SQLite and PostgreSQL.

Claims, per-alert order, leases, retries, dead letters, exactly-once creates and resumption.
The HTTP side is proven in tests/e2e; here the target is a fake whose failures are scripted.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.targets.autotask.profile import REST_PROFILE
from connector.domain import (
    AlertStatus,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketRef,
)
from connector.errors import TargetAuthError, TargetError, TargetRejected, TargetUnavailable
from connector.integrations.settings import IntegrationSettings
from connector.integrations.store import load_options, replace_requests
from connector.payloads.requests import default_template
from connector.persistence.models import (
    ApiCall,
    Delivery,
    DeliveryRequest,
    Integration,
    TicketLink,
    utcnow,
)
from connector.pipeline.outbox import RetryPolicy
from connector.pipeline.worker import Worker
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services
from tests.conftest import API_TOKEN, HOOK_TOKEN, ApiUser

ZONE = "https://webservices2.autotask.net/ATServicesRest/V1.0/"


@dataclass
class FakeTicket:
    ticket_id: int
    #: The create request's JSON body (TicketModel: companyID, priority, externalID …).
    body: dict[str, Any]
    status: int
    notes: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


@dataclass
class FakeTarget:
    """Autotask REST in a dict, fed the worker's rendered requests; `fail` scripts errors per
    operation (popped one per call)."""

    tickets: dict[int, FakeTicket] = field(default_factory=dict)
    fail: dict[str, list[Exception]] = field(default_factory=dict)
    #: create: commit the ticket, then raise this (an answer lost on the way back)
    lose_create_answer: list[Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    requests: list[OutboundRequest] = field(default_factory=list)
    #: What the create answers, when a test wants an answer without the id.
    create_answer: str | None = None

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        if self.fail.get(operation):
            raise self.fail[operation].pop(0)

    def endpoint_url(self) -> str:
        return ZONE

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        self._maybe_fail("find")
        for ticket in self.tickets.values():
            if ticket.body["externalID"] == marker:
                return TicketRef(ticket.ticket_id, f"T{ticket.ticket_id}", ticket.status)
        return None

    def send(self, request: OutboundRequest) -> TargetResponse:
        self.requests.append(request)
        body = json.loads(request.body)
        sent = {"method": request.method, "url": request.url, "body": request.body}
        if request.action is RequestAction.CREATE:
            assert (request.method, request.url) == ("POST", ZONE + "Tickets")
            self._maybe_fail("create")
            ticket_id = 1000 + len(self.tickets)
            self.tickets[ticket_id] = FakeTicket(
                ticket_id, body, body["status"], history=["create"]
            )
            if self.lose_create_answer:
                raise self.lose_create_answer.pop(0)
            answer = self.create_answer or json.dumps({"itemId": ticket_id})
            return TargetResponse(200, answer, sent)
        if request.action is RequestAction.NOTE:
            self._maybe_fail("note")
            ticket = self.tickets[int(request.url.split("/")[-2])]
            ticket.notes.append(body.get("title", ""))
            ticket.history.append("note")
            return TargetResponse(200, json.dumps({"itemId": len(ticket.notes)}), sent)
        assert request.method == "PATCH"
        self._maybe_fail("status")
        ticket = self.tickets[body["id"]]
        ticket.status = body["status"]
        ticket.history.append(f"status {body['status']}")
        return TargetResponse(200, json.dumps({"itemId": body["id"]}), sent)

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        ticket = self.tickets.get(ticket_id)
        return TicketRef(ticket_id, f"T{ticket_id}", ticket.status) if ticket else None


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        # A minute ahead of the wall clock, which ingestion stamps deliveries with: what a
        # test posts is due at once.
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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
def make_worker(services: Services, fake: FakeTarget, clock: Clock) -> Callable[..., Worker]:
    def factory(
        _: Integration, __: IntegrationSettings, recorder: CallRecorder, **___: Any
    ) -> TicketTarget:
        return fake

    def build(worker_id: str = "w1") -> Worker:
        return Worker(services, factory, worker_id=worker_id, clock=clock, rng=random.Random(1))

    return build


def post(client: FlaskClient, fingerprint: str, status: str, **extra: Any) -> None:
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


def deliveries(services: Services) -> list[Delivery]:
    with services.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def drain(worker: Worker, clock: Clock, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not worker.run_once():
            clock.advance(seconds=10)  # let retries fall due
            if not worker.run_once():
                return


def test_claims_keep_per_alert_order_and_never_hand_out_an_alerts_later_event(
    client: FlaskClient, services: Services, make_worker: Callable[..., Worker]
) -> None:
    post(client, "a", "active")
    post(client, "a", "acknowledged", acknowledged_by="jane")
    post(client, "b", "active")
    first, second = make_worker("w1"), make_worker("w2")
    a1, a2, b1 = (d.id for d in deliveries(services))
    assert first.claim() == [a1, b1]
    assert second.claim() == []  # a2 waits for a1, which w1 holds
    first.process(a1)
    assert second.claim() == [a2]


def test_an_expired_lease_is_taken_over_and_the_old_holder_backs_off(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    first, second = make_worker("w1"), make_worker("w2")
    (claimed,) = first.claim()
    clock.advance(seconds=31)  # WORKER_LEASE_SECONDS is 30 in the test settings
    assert second.claim() == [claimed]
    first.process(claimed)  # its lease is gone: it must not touch Autotask
    assert fake.calls == []
    second.process(claimed)
    assert len(fake.tickets) == 1
    assert deliveries(services)[0].attempts == 2


def test_a_delivery_late_in_a_batch_is_leased_afresh_when_its_turn_comes(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    post(client, "b", "active")
    first, second = make_worker("w1"), make_worker("w2")
    a, b = first.claim()  # one lease for both, until claim + 30 s
    clock.advance(seconds=25)  # `a` took most of it
    first.process(a)
    claimed_meanwhile: list[list[int]] = []
    send = fake.send

    def slow_send(request: OutboundRequest) -> TargetResponse:
        clock.advance(seconds=10)  # b's create takes 10 s: past the batch's lease
        claimed_meanwhile.append(second.claim())
        return send(request)

    fake.send = slow_send  # type: ignore[method-assign]
    first.process(b)
    assert claimed_meanwhile == [[]]  # b was still w1's: no second worker sent its create
    assert len(fake.tickets) == 2
    assert [d.state for d in deliveries(services)] == ["done", "done"]


def test_lifecycle_creates_updates_and_completes_one_ticket(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active", tenant="fabrikam")
    post(client, "a", "acknowledged", acknowledged_by="jane", note="on it")
    post(client, "a", "cleared")
    drain(make_worker(), clock)
    (ticket,) = fake.tickets.values()
    assert ticket.body["companyID"] == 29683415
    assert ticket.body["priority"] == 1  # error → High
    # Four calls: the clear's text is the completing PATCH's resolution, not a note of its own,
    # and the create's id is not read back (no request uses the ticket number).
    assert ticket.history == ["create", "status 8", "note", "status 5"]
    assert fake.calls == ["create", "status", "note", "status"]
    complete = json.loads(fake.requests[-1].body)
    assert complete["resolution"].startswith("Alert cleared.")
    assert [d.outcome for d in deliveries(services)] == ["created", "updated", "completed"]
    with services.transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        assert (link.state, link.ticket_id, link.ticket_status) == ("completed", 1000, 5)


@pytest.mark.parametrize(
    ("error", "state", "attempts"),
    [
        (TargetUnavailable("Autotask answered 503"), "pending", 1),
        (TargetRejected("Value does not reference an existing entity"), "dead", 1),
        (TargetError("thread threshold", retryable=True, retry_after=120), "pending", 1),
    ],
    ids=["retryable waits", "permanent dead-letters at once", "rate limited waits"],
)
def test_a_failed_attempt_is_retried_or_dead_lettered_by_kind(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
    error: TargetError,
    state: str,
    attempts: int,
) -> None:
    post(client, "a", "active")
    fake.fail["create"] = [error]
    make_worker().run_once()
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.attempts) == (state, attempts)
    assert delivery.last_error == str(error)
    # What the delivery did, not what it set out to do: no ticket was created.
    assert delivery.outcome == ("failed" if state == "dead" else None)
    assert delivery.plan is not None and delivery.plan["outcome"] == "created"
    if state == "pending":
        wait = (delivery.next_attempt_at - clock.now).total_seconds()
        expected = max(0.05, error.retry_after or 0)  # RETRY_DELAYS starts at 0.05 s
        assert expected * 0.8 <= wait <= max(expected * 1.2, error.retry_after or 0)


def test_retryable_failures_dead_letter_once_the_deadline_passes(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    worker = make_worker()
    fake.fail["create"] = [TargetUnavailable("down")] * 3
    worker.run_once()
    clock.advance(hours=73)  # DELIVERY_MAX_AGE_HOURS defaults to 72
    worker.run_once()
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.attempts) == ("dead", 2)
    assert fake.tickets == {}


def integration_calls(client: FlaskClient) -> dict[str, Any]:
    """The integration's `autotask_calls` status from the JSON API."""
    response = client.get("/api/v1/integrations", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200, response.get_json()
    (integration,) = response.get_json()["integrations"]
    calls: dict[str, Any] = integration["autotask_calls"]
    return calls


def test_refused_credentials_pause_the_integration_and_lose_nothing(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    post(client, "b", "active")
    fake.fail["create"] = [TargetAuthError("Autotask POST Tickets: HTTP 401: denied")]
    worker = make_worker()
    drain(worker, clock, rounds=5)  # ~50 s of retries: all inside the credentials pause
    assert fake.calls == ["create"]  # one call met the refusal; nothing else was tried
    assert fake.tickets == {}
    for delivery in deliveries(services):
        assert (delivery.state, delivery.attempts, delivery.outcome) == ("pending", 0, None)
        assert "refused the integration's credentials" in (delivery.last_error or "")
    calls = integration_calls(client)
    assert calls["state"] == "credentials_refused"
    assert "HTTP 401: denied" in calls["message"] and calls["until"] is not None

    clock.advance(seconds=301)  # CREDENTIALS_PAUSE_SECONDS defaults to 300
    drain(worker, clock)
    assert len(fake.tickets) == 2
    assert [d.outcome for d in deliveries(services)] == ["created", "created"]
    assert integration_calls(client) == {"state": "ok", "message": None, "until": None}


def test_a_refusal_without_reason_is_tried_its_few_times_then_dead_lettered(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    refusal = TargetUnavailable("HTTP 500: Something went wrong", max_attempts=3)
    fake.fail["create"] = [refusal] * 5
    drain(make_worker(), clock)
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.attempts, delivery.outcome) == ("dead", 3, "failed")
    assert fake.calls.count("create") == 3
    assert delivery.last_error == "HTTP 500: Something went wrong"


def test_a_create_whose_answer_was_lost_is_adopted_by_marker_not_repeated(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    fake.lose_create_answer = [TargetUnavailable("read timed out")]
    drain(make_worker(), clock)
    assert len(fake.tickets) == 1
    assert fake.calls == ["create", "find"]
    with services.transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        assert (link.state, link.ticket_id) == ("open", 1000)


def test_a_retry_resumes_after_the_steps_already_done(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    post(client, "a", "active")
    post(client, "a", "acknowledged", acknowledged_by="jane")
    fake.fail["note"] = [TargetUnavailable("503")]
    drain(make_worker(), clock)
    (ticket,) = fake.tickets.values()
    assert ticket.history == ["create", "status 8", "note"]  # the status was not set twice


@pytest.mark.parametrize(
    ("reopen_minutes", "tickets", "history"),
    [
        (1440, 1, ["create", "status 5", "status 1", "note"]),
        (0, 2, ["create", "status 5"]),
    ],
    ids=["fires again within the window: reopened", "after the window: a new ticket"],
)
def test_an_alert_firing_again_after_completion(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
    reopen_minutes: int,
    tickets: int,
    history: list[str],
) -> None:
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.settings = {**integration.settings, "reopen_window_minutes": reopen_minutes}
    worker = make_worker()
    post(client, "a", "active", occurred_at="2026-11-22T12:00:00Z")
    post(client, "a", "cleared", occurred_at="2026-11-22T12:05:00Z")
    drain(worker, clock)
    clock.advance(minutes=10)
    post(client, "a", "active", occurred_at="2026-11-22T12:15:00Z")
    drain(worker, clock)
    assert len(fake.tickets) == tickets
    assert fake.tickets[1000].history == history
    with services.transaction() as session:
        episodes = [link.episode for link in session.scalars(select(TicketLink))]
    assert episodes == list(range(1, tickets + 1))


def test_every_target_call_is_recorded_as_an_api_call(
    client: FlaskClient, services: Services, clock: Clock
) -> None:
    from connector.domain import ApiCallRecord

    class Recording(FakeTarget):
        recorder: CallRecorder | None = None

        def send(self, request: OutboundRequest) -> TargetResponse:
            assert self.recorder is not None
            self.recorder(ApiCallRecord(clock.now, "POST", "Tickets", 200, 12.5))
            return super().send(request)

    target = Recording()

    def factory(
        _: Integration, __: IntegrationSettings, recorder: CallRecorder, **___: Any
    ) -> TicketTarget:
        target.recorder = recorder
        return target

    post(client, "a", "active")
    Worker(services, factory, clock=clock).run_once()
    (delivery,) = deliveries(services)
    with services.transaction() as session:
        (call,) = session.scalars(select(ApiCall)).all()
        assert (call.method, call.entity, call.http_status, call.execution_ms) == (
            "POST",
            "Tickets",
            200,
            12.5,
        )
        assert call.delivery_id == delivery.id
        # Autotask counts calls per API user; the activity log names it as Autotask would.
        integration = session.get(Integration, call.integration_id)
        assert integration is not None
        assert call.api_user == integration.username != ""


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [(1, None, 4.0, 6.0), (2, None, 24.0, 36.0), (9, None, 1440.0, 2160.0), (1, 60.0, 60.0, 60.0)],
    ids=["first retry", "second retry", "schedule's last step repeats", "Retry-After wins"],
)
def test_retry_schedule_with_jitter(
    attempts: int, retry_after: float | None, low: float, high: float
) -> None:
    policy = RetryPolicy((5, 30, 120, 300, 900, 1800), jitter=0.2)
    waits = [policy.delay(attempts, retry_after, random.Random(seed)) for seed in range(200)]
    assert low <= min(waits) and max(waits) <= high
    if retry_after is None:
        assert len(set(waits)) > 100  # jittered, not fixed


# -- delivery requests -------------------------------------------------------------------------


def edit_requests(services: Services, **changes: Any) -> None:
    """Store edited copies of the integration's requests: {"status_action": {field: value}}."""
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        options = load_options(session, integration, REST_PROFILE)
        specs = []
        for key, fields in changes.items():
            status, action = key.split("_")
            spec = options.requests[(AlertStatus(status), RequestAction(action))]
            specs.append(dataclasses.replace(spec, **fields))
        replace_requests(session, integration, specs, REST_PROFILE)


def set_settings(services: Services, **settings: Any) -> None:
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.settings = {**integration.settings, **settings}


def test_the_worker_sends_the_admins_edited_requests(
    client: FlaskClient, make_worker: Callable[..., Worker], clock: Clock, fake: FakeTarget
) -> None:
    create = default_template("rest/active.json").replace('"##TITLE##"', '"[NOC] ##TITLE##"')
    edit_requests(
        services=make_worker().services,
        active_create={"body": create, "headers": {"X-Team": "noc ##HOST##"}},
    )
    post(client, "a", "active", host="srv\r\n01")
    drain(make_worker(), clock)
    (ticket,) = fake.tickets.values()
    assert ticket.body["title"] == "[NOC] Alert a"
    (request,) = fake.requests
    assert request.headers == {"X-Team": "noc srv01"}  # control characters cannot split headers


def test_a_status_switched_off_sends_nothing_for_its_events(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    set_settings(services, deliver={"acknowledged": False})
    post(client, "a", "active")
    post(client, "a", "acknowledged", acknowledged_by="jane")
    drain(make_worker(), clock)
    (ticket,) = fake.tickets.values()
    assert ticket.history == ["create"]
    assert [(d.outcome, d.last_error) for d in deliveries(services)] == [
        ("created", None),
        ("ignored", "deliveries for acknowledged alerts are off"),
    ]


def test_same_request_for_every_status_uses_the_active_requests(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    set_settings(services, same_request_for_every_status=True)
    edit_requests(services, active_update={"headers": {"X-Request": "active update"}})
    post(client, "a", "active")
    post(client, "a", "cleared")
    drain(make_worker(), clock)
    (ticket,) = fake.tickets.values()
    # Active's update carries no resolution, so the clear's text goes as a note first.
    assert ticket.history == ["create", "note", "status 5"]
    assert "Alert cleared." in json.loads(fake.requests[-2].body)["description"]
    complete = fake.requests[-1]
    assert complete.headers == {"X-Request": "active update"}
    assert "resolution" not in json.loads(complete.body)  # Active's update, not Cleared's


def test_the_default_cleared_request_completes_with_a_resolution(
    client: FlaskClient, make_worker: Callable[..., Worker], clock: Clock, fake: FakeTarget
) -> None:
    post(client, "a", "active")
    post(client, "a", "cleared", message="disk has room again")
    drain(make_worker(), clock)
    body = json.loads(fake.requests[-1].body)
    assert body["status"] == 5
    assert body["resolution"].startswith("Alert cleared.")
    assert "disk has room again" in body["resolution"]


def test_a_template_that_fails_on_an_alert_dead_letters_without_a_call(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    # Stored directly: a template saved before the save-time check existed.
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        row = session.scalars(
            select(DeliveryRequest).where(
                DeliveryRequest.status == "active", DeliveryRequest.action == "create"
            )
        ).one()
        row.body = '{"title": ##TITLE##}'
        integration.updated_at = clock.now
    post(client, "a", "active")
    drain(make_worker(), clock)
    (delivery,) = deliveries(services)
    assert delivery.state == "dead"
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("template: ")
    assert "not valid JSON" in delivery.last_error
    assert fake.requests == []


def test_an_answer_without_the_id_dead_letters_and_a_replay_adopts_the_ticket(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
) -> None:
    edit_requests(services, active_create={"id_path": "$.item.id"})
    post(client, "a", "active")
    drain(make_worker(), clock)
    (delivery,) = deliveries(services)
    assert delivery.state == "dead"
    assert delivery.last_error is not None
    assert "$.item.id" in delivery.last_error and "itemId" in delivery.last_error
    assert delivery.last_request is not None
    assert delivery.last_request["url"].endswith("/Tickets")
    edit_requests(services, active_create={"id_path": ""})
    response = client.post(
        f"/api/v1/deliveries/{delivery.id}/replay",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 200, response.get_json()
    drain(make_worker(), clock)
    assert len(fake.tickets) == 1  # adopted by its marker, not created again
    assert fake.calls[-1] == "find"
    (delivery,) = deliveries(services)
    assert delivery.state == "done"


def test_a_failed_request_is_kept_and_no_template_ever_carried_the_tracking_identifier(
    client: FlaskClient,
    services: Services,
    make_worker: Callable[..., Worker],
    clock: Clock,
    fake: FakeTarget,
    api_user: ApiUser,
) -> None:
    """##INTEGRATIONCODE## renders blank (issue 15): the target adds the code after rendering."""
    edit_requests(services, active_create={"headers": {"X-Code": "##INTEGRATIONCODE##"}})
    fake.fail["create"] = [TargetRejected("no such company")]
    post(client, "a", "active")
    drain(make_worker(), clock)
    (delivery,) = deliveries(services)
    assert delivery.state == "dead"
    assert delivery.last_request is not None
    assert delivery.last_request["headers"] == {"X-Code": ""}
    assert fake.requests[0].headers == {"X-Code": ""}
    assert api_user.integration_code not in json.dumps(delivery.last_request)


# -- leases: a call that outlives the lease -------------------------------------------------------


@dataclass
class SlowCreateTarget(FakeTarget):
    """A FakeTarget whose creates wait for `gate` (as a slow Autotask would) before landing."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)

    def send(self, request: OutboundRequest) -> TargetResponse:
        if request.action is RequestAction.CREATE:
            self.entered.set()
            if not self.gate.wait(timeout=30):
                raise AssertionError("the test never released the create")
        return super().send(request)


def real_time_worker(
    services: Services, target: FakeTarget, worker_id: str, lease_seconds: float
) -> Worker:
    """A worker on the wall clock with a short lease (the lease keeper runs in real time)."""

    def factory(
        _: Integration, __: IntegrationSettings, recorder: CallRecorder, **___: Any
    ) -> TicketTarget:
        return target

    short = dataclasses.replace(
        services, settings={**services.settings, "WORKER_LEASE_SECONDS": lease_seconds}
    )
    return Worker(short, factory, worker_id=worker_id, rng=random.Random(1))


def wait_for(event: threading.Event, what: str, timeout: float = 30.0) -> None:
    if not event.wait(timeout):
        raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


def test_a_create_that_outlives_the_lease_keeps_its_delivery_and_makes_one_ticket(
    client: FlaskClient, services: Services
) -> None:
    """The holder renews its lease while its create is in flight: no other worker takes over."""
    # Renewed every third of it: 2 s leaves a starved renewal thread (a loaded CI) 1.3 s slack.
    lease = 2.0
    target = SlowCreateTarget()
    post(client, "a", "active")
    first = real_time_worker(services, target, "w1", lease)
    second = real_time_worker(services, target, "w2", lease)
    (claimed,) = first.claim()
    worker = threading.Thread(target=first.process, args=(claimed,), daemon=True)
    worker.start()
    wait_for(target.entered, "the first worker's create")

    # Three leases long, the other worker keeps trying to take the delivery over.
    taken: list[int] = []
    deadline = time.monotonic() + 3 * lease
    while time.monotonic() < deadline:
        taken += second.claim()
        time.sleep(lease / 6)
    target.gate.set()
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert taken == []
    assert second.claim() == []
    assert len(target.tickets) == 1
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.outcome, delivery.attempts) == ("done", "created", 1)


def test_a_worker_that_lost_its_lease_mid_create_commits_nothing_and_one_ticket_remains(
    client: FlaskClient, services: Services
) -> None:
    """Taken over while its create was in flight (a frozen process, a database cut off from
    it): the new holder does not look the marker up while that create may still be running,
    the old holder records nothing, and the new one adopts the created ticket by its marker."""
    target = SlowCreateTarget()
    post(client, "a", "active")
    first = real_time_worker(services, target, "w1", 30)
    second = real_time_worker(services, target, "w2", 30)
    (claimed,) = first.claim()
    worker = threading.Thread(target=first.process, args=(claimed,), daemon=True)
    worker.start()
    wait_for(target.entered, "the first worker's create")
    with services.transaction() as session:  # what w2's claim of an expired lease does
        delivery = session.get(Delivery, claimed)
        assert delivery is not None
        delivery.lease_owner = "w2"
        delivery.attempts += 1

    second.process(claimed)  # w1's create has not landed yet: a lookup now would miss it

    (delivery,) = deliveries(services)
    assert delivery.state == "pending" and delivery.attempts == 1  # postponed, not spent
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("waiting: a create of this ticket was sent at")
    assert target.calls == []  # w2 neither looked up nor created (w1's create is in the gate)
    target.gate.set()  # w1's create lands in Autotask and answers
    worker.join(timeout=30)
    assert not worker.is_alive()
    with services.transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        assert (link.state, link.ticket_id) == ("pending_create", None)  # w1 recorded nothing
        assert link.create_sent_at is not None

    # Once that create must have ended, the lookup finds its ticket.
    later = Worker(
        dataclasses.replace(services),
        second.target_factory,
        worker_id="w2",
        clock=lambda: utcnow() + second.create_guard,
        rng=random.Random(1),
    )
    assert later.claim() == [claimed]
    later.process(claimed)

    assert len(target.tickets) == 1
    assert target.calls == ["create", "find"]
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.outcome) == ("done", "created")
    with services.transaction() as session:
        link = session.scalars(select(TicketLink)).one()
        assert (link.state, link.ticket_id) == ("open", next(iter(target.tickets)))
        assert link.create_sent_at is None
