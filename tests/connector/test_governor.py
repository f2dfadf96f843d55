"""The governor: hourly budget and reserve, 429 pauses, circuit breaker, slot leases.

Against the real database (SQLite and PostgreSQL) with a settable clock; the last tests drive the
worker with the FakeTarget of test_worker and show that throttling spends no attempt.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from adapters.targets.autotask.profile import REST_PROFILE, endpoint_of
from connector.domain import (
    ApiCallRecord,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketRef,
)
from connector.errors import (
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)
from connector.integrations.settings import IntegrationSettings
from connector.persistence.models import ApiCall, Delivery, GovernorState, Integration
from connector.pipeline.dispatch import GovernedTarget
from connector.pipeline.governor import Governor, Limits, Permit, Throttled
from connector.pipeline.worker import Worker
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services
from tests.connector.test_worker import ZONE, Clock, FakeTarget, deliveries, drain, post

LIMITS = Limits(
    hourly_ceiling=10, reserve_fraction=0.2, breaker_failures=5, breaker_cooldown=30, slot_wait=0
)


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def integration_id(services: Services) -> int:
    with services.transaction() as session:
        return int(session.scalars(select(Integration.id)).one())


@pytest.fixture
def governor(services: Services, clock: Clock) -> Governor:
    return Governor(services, LIMITS, clock=clock, sleep=lambda _: None)


def add_calls(services: Services, integration_id: int, *ages_minutes: float, now: datetime) -> None:
    """Stored Autotask calls made `ages_minutes` before `now`."""
    with services.transaction() as session:
        for age in ages_minutes:
            session.add(
                ApiCall(
                    integration_id=integration_id,
                    at=now - timedelta(minutes=age),
                    method="POST",
                    entity="Tickets",
                    http_status=200,
                    execution_ms=1.0,
                )
            )


def breaker(services: Services, integration_id: int) -> str:
    with services.transaction() as session:
        state = session.get(GovernorState, integration_id)
        return state.breaker if state else "closed"


# -- budget and reserve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "creates", "admitted"),
    [
        (7, True, True),  # creates may use 10 × (1 − 0.2) = 8
        (8, True, False),
        (8, False, True),  # notes, updates, completions, lookups: the full ceiling
        (9, False, True),
        (10, False, False),
        (0, True, True),
    ],
)
def test_budget_ceiling_and_reserve(
    services: Services,
    governor: Governor,
    integration_id: int,
    clock: Clock,
    used: int,
    creates: bool,
    admitted: bool,
) -> None:
    add_calls(services, integration_id, *([1.0] * used), now=clock.now)
    if admitted:
        permit = governor.admit(integration_id, "Tickets", "w1", creates=creates)
        governor.release(permit, None)
    else:
        with pytest.raises(Throttled, match="hourly API budget") as caught:
            governor.admit(integration_id, "Tickets", "w1", creates=creates)
        assert caught.value.consumes_attempt is False


def test_calls_in_flight_count_against_the_budget(
    services: Services, governor: Governor, integration_id: int, clock: Clock
) -> None:
    add_calls(services, integration_id, *([1.0] * 8), now=clock.now)
    governor.admit(integration_id, "Tickets", "w1", creates=False)
    governor.admit(integration_id, "TicketNotes", "w2", creates=False)
    with pytest.raises(Throttled, match="10 of 10"):
        governor.admit(integration_id, "Tickets", "w3", creates=False)


@pytest.mark.parametrize(
    ("ages", "creates", "wait_minutes"),
    [
        ([59, 30, 10, 5, 5, 5, 5, 5, 5, 5], False, 1),  # the oldest leaves in 1 minute
        ([50, 40, 30, 10, 5, 5, 5, 5, 5, 5], False, 10),
        # A create needs 3 calls gone (10 + 1 − 8): the third oldest leaves in 30 minutes.
        ([50, 40, 30, 10, 5, 5, 5, 5, 5, 5], True, 30),
        ([61, 61, 59, 5, 5, 5, 5, 5, 5, 5], True, 1),  # older than 60 min: not counted
    ],
)
def test_the_wait_ends_when_the_oldest_counted_call_leaves_the_rolling_window(
    services: Services,
    governor: Governor,
    integration_id: int,
    clock: Clock,
    ages: list[float],
    creates: bool,
    wait_minutes: float,
) -> None:
    add_calls(services, integration_id, *ages, now=clock.now)
    with pytest.raises(Throttled) as caught:
        governor.admit(integration_id, "Tickets", "w1", creates=creates)
    assert caught.value.retry_after == pytest.approx(wait_minutes * 60, abs=0.01)
    clock.advance(seconds=(caught.value.retry_after or 0) + 0.01)
    governor.release(governor.admit(integration_id, "Tickets", "w1", creates=creates), None)


# -- 429 pause ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "pause"), [(7.0, 7.0), (None, 5.0)])
def test_a_429_pauses_every_call_of_the_integration_in_every_process(
    services: Services,
    governor: Governor,
    integration_id: int,
    clock: Clock,
    retry_after: float | None,
    pause: float,
) -> None:
    other_process = Governor(services, LIMITS, clock=clock)
    permit = governor.admit(integration_id, "Tickets", "w1", creates=True)
    governor.release(permit, TargetRateLimited("thread threshold", retry_after=retry_after))
    for gov, endpoint in ((governor, "TicketNotes"), (other_process, "Tickets")):
        with pytest.raises(Throttled, match="pause") as caught:
            gov.admit(integration_id, endpoint, "w2", creates=False)
        assert caught.value.retry_after == pytest.approx(pause)
    assert breaker(services, integration_id) == "closed"  # a 429 is no failure of Autotask
    clock.advance(seconds=pause)
    other_process.release(other_process.admit(integration_id, "Tickets", "w2", creates=False), None)


# -- circuit breaker ------------------------------------------------------------------------------


def call(
    governor: Governor, integration_id: int, error: Exception | None, holder: str = "w1"
) -> None:
    governor.release(governor.admit(integration_id, "Tickets", holder, creates=False), error)


@pytest.mark.parametrize(
    ("errors", "state"),
    [
        ([TargetUnavailable("503")] * 4, "closed"),
        ([TargetUnavailable("503")] * 5, "open"),
        ([TargetUnavailable("timeout")] * 4 + [None, TargetUnavailable("503")], "closed"),
        # A 4xx rejection proves Autotask is serving: it resets the count.
        (
            [TargetUnavailable("503")] * 4 + [TargetRejected("400")] + [TargetUnavailable("")] * 4,
            "closed",
        ),
        ([TargetRateLimited("429", retry_after=0)] * 6, "closed"),
    ],
    ids=["4 failures", "5 failures open", "success resets", "4xx resets", "429s are no failure"],
)
def test_the_breaker_opens_after_consecutive_retryable_failures(
    services: Services,
    governor: Governor,
    integration_id: int,
    clock: Clock,
    errors: list[Exception | None],
    state: str,
) -> None:
    for error in errors:
        call(governor, integration_id, error)
        clock.advance(seconds=10)  # past a 429's pause
    assert breaker(services, integration_id) == state


def test_breaker_open_half_open_single_probe_reopen_and_close(
    services: Services,
    governor: Governor,
    integration_id: int,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connector.pipeline.governor")
    for _ in range(5):
        call(governor, integration_id, TargetUnavailable("503"))
    with pytest.raises(Throttled, match="circuit breaker open") as caught:
        governor.admit(integration_id, "Tickets", "w1", creates=False)
    assert caught.value.retry_after == pytest.approx(30)
    clock.advance(seconds=30)
    probe = governor.admit(integration_id, "Tickets", "w1", creates=False)
    assert probe.probe
    with pytest.raises(Throttled, match="probe call is in flight"):  # a second worker waits
        governor.admit(integration_id, "TicketNotes", "w2", creates=False)
    governor.release(probe, TargetUnavailable("still 503"))
    assert breaker(services, integration_id) == "open"  # re-opened for another cooldown
    with pytest.raises(Throttled, match="circuit breaker open"):
        governor.admit(integration_id, "Tickets", "w2", creates=False)
    clock.advance(seconds=30)
    probe = governor.admit(integration_id, "Tickets", "w2", creates=False)
    governor.release(probe, None)
    assert breaker(services, integration_id) == "closed"
    call(governor, integration_id, None, holder="w3")
    messages = [r.message for r in caplog.records]
    assert messages.count("breaker.open") == 2
    assert messages.count("breaker.closed") == 1


def test_a_probe_whose_worker_died_is_given_to_another_after_its_lease(
    governor: Governor, integration_id: int, clock: Clock
) -> None:
    for _ in range(5):
        call(governor, integration_id, TargetUnavailable("503"))
    clock.advance(seconds=30)
    governor.admit(integration_id, "Tickets", "crashed", creates=False)  # never released
    clock.advance(seconds=LIMITS.lease + 1)
    assert governor.admit(integration_id, "Tickets", "w2", creates=False).probe


# -- concurrency slots ----------------------------------------------------------------------------


def test_three_slots_per_endpoint_and_a_crashed_holders_slot_expires(
    governor: Governor, integration_id: int, clock: Clock
) -> None:
    held = [governor.admit(integration_id, "Tickets", f"w{n}", creates=False) for n in range(3)]
    assert len({p.slot_id for p in held}) == 3
    with pytest.raises(Throttled, match="3 calls to Tickets already in flight") as caught:
        governor.admit(integration_id, "Tickets", "w4", creates=False)
    assert caught.value.consumes_attempt is False
    notes = governor.admit(integration_id, "TicketNotes", "w4", creates=False)  # another endpoint
    governor.release(notes, None)
    governor.release(held[0], None)
    freed = governor.admit(integration_id, "tickets", "w4", creates=False)  # case-insensitive
    assert freed.slot_id == held[0].slot_id
    clock.advance(seconds=LIMITS.lease + 1)  # w1 and w2 crashed: their leases run out
    taken = [governor.admit(integration_id, "Tickets", f"w{n}", creates=False) for n in (5, 6, 7)]
    assert len(taken) == 3
    governor.release(held[1], None)  # a late release by the crashed holder frees nothing
    with pytest.raises(Throttled):
        governor.admit(integration_id, "Tickets", "w8", creates=False)


def test_a_holder_takes_back_its_own_slot_whose_release_was_lost(
    governor: Governor, integration_id: int
) -> None:
    # Lane 1's release never reached the database (it went down during the call): its slot is
    # still marked held, and the two others are held by calls in flight.
    lost = governor.admit(integration_id, "Tickets", "lane-1", creates=False)
    for n in (2, 3):
        governor.admit(integration_id, "Tickets", f"lane-{n}", creates=False)
    with pytest.raises(Throttled):
        governor.admit(integration_id, "Tickets", "lane-4", creates=False)
    # Lane 1 asks for its next call: it is in no call, so the slot marked with its name is free.
    again = governor.admit(integration_id, "Tickets", "lane-1", creates=False)
    assert again.slot_id == lost.slot_id
    with pytest.raises(Throttled):  # still three at most
        governor.admit(integration_id, "Tickets", "lane-4", creates=False)


def test_a_holder_takes_its_own_lost_slot_before_a_free_one(
    governor: Governor, integration_id: int
) -> None:
    first = governor.admit(integration_id, "Tickets", "lane-1", creates=False)
    lost = governor.admit(integration_id, "Tickets", "lane-2", creates=False)  # never released
    governor.release(first, None)
    # A lower slot is free, yet lane 2 takes back its own: else that one stayed stranded.
    assert governor.admit(integration_id, "Tickets", "lane-2", creates=False).slot_id == (
        lost.slot_id
    )
    taken = {
        governor.admit(integration_id, "Tickets", f"lane-{n}", creates=False).slot_id
        for n in (3, 4)
    }
    assert lost.slot_id not in taken and len(taken) == 2


def test_concurrent_admissions_never_hand_out_a_fourth_slot(
    services: Services, integration_id: int, clock: Clock
) -> None:
    permits: list[Permit] = []
    refused: list[Throttled] = []
    start = threading.Barrier(8)

    def admit(n: int) -> None:
        gov = Governor(services, LIMITS, clock=clock)
        start.wait(timeout=30)
        try:
            permits.append(gov.admit(integration_id, "Tickets", f"t{n}", creates=False))
        except Throttled as e:
            refused.append(e)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [t for t in threads if t.is_alive()], "an admission never returned"
    assert (len(permits), len(refused)) == (3, 5)


def test_a_slot_is_waited_for_briefly_before_the_delivery_is_rescheduled(
    services: Services, integration_id: int, clock: Clock
) -> None:
    sleeps: list[float] = []
    waiting = Governor(services, Limits(slot_wait=0.3), clock=clock, sleep=sleeps.append)
    held = [waiting.admit(integration_id, "Tickets", f"w{n}", creates=False) for n in range(3)]
    with pytest.raises(Throttled) as caught:
        waiting.admit(integration_id, "Tickets", "w4", creates=False)
    assert sleeps and caught.value.retry_after == 1.0
    assert len(held) == 3


# Which endpoint a request counts against: tests/adapters/targets/autotask/test_profile.py.


# -- through the worker ---------------------------------------------------------------------------


@dataclass
class RecordingFake(FakeTarget):
    """The FakeTarget of test_worker, reporting every call to the recorder as the real ones do."""

    recorder: CallRecorder | None = None
    clock: Callable[[], datetime] | None = None
    reported: int = 0

    def _report(self, entity: str) -> None:
        self.reported += 1
        if self.recorder is not None and self.clock is not None:
            self.recorder(ApiCallRecord(self.clock(), "POST", entity, 200, 1.0))

    def send(self, request: OutboundRequest) -> TargetResponse:
        self._report(endpoint_of(request))
        return super().send(request)

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        self._report("Tickets")
        return super().find_ticket_by_marker(marker)

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        self._report("Tickets")
        return super().get_ticket(ticket_id)


@pytest.fixture
def fake(clock: Clock) -> RecordingFake:
    return RecordingFake(clock=clock)


def governed_worker(
    services: Services, fake: RecordingFake, clock: Clock, limits: Limits = LIMITS
) -> Worker:
    def factory(
        _: Integration, __: IntegrationSettings, recorder: CallRecorder, **___: Any
    ) -> TicketTarget:
        fake.recorder = recorder
        return fake

    governor = Governor(services, limits, clock=clock, sleep=lambda _: None)
    return Worker(
        services, factory, worker_id="w1", clock=clock, rng=random.Random(1), governor=governor
    )


@pytest.fixture
def worker(services: Services, fake: RecordingFake, clock: Clock) -> Worker:
    return governed_worker(services, fake, clock)


def exhaust_the_create_budget(client: FlaskClient, worker: Worker) -> None:
    """Ten new alerts, three worker passes: LIMITS let eight creates through."""
    for n in range(10):
        post(client, f"a{n}", "active")
    for _ in range(3):
        worker.run_once()


def test_over_budget_creates_wait_while_acks_go_through_and_no_attempt_is_spent(
    client: FlaskClient, services: Services, worker: Worker, clock: Clock, fake: RecordingFake
) -> None:
    exhaust_the_create_budget(client, worker)
    # Each create is one call (no read-back: no request uses the ticket number): 8 creates use
    # the 8 allowed.
    assert len(fake.tickets) == 8
    waiting = [d for d in deliveries(services) if d.state == "pending"]
    assert len(waiting) == 2
    for delivery in waiting:
        assert delivery.attempts == 0
        assert delivery.last_error is not None
        assert delivery.last_error.startswith("throttled: hourly API budget for creates")
        assert delivery.next_attempt_at > clock.now + timedelta(minutes=55)
    post(client, "a0", "acknowledged", acknowledged_by="jane")  # an ack: the reserve serves it
    worker.run_once()
    acked = deliveries(services)[-1]
    assert (acked.state, acked.attempts) == ("done", 1)
    clock.advance(minutes=61)
    drain(worker, clock)
    assert [d.state for d in deliveries(services)] == ["done"] * 11
    assert [d.attempts for d in deliveries(services)] == [1] * 11
    assert len(fake.tickets) == 10  # no duplicate
    with services.transaction() as session:
        stored = session.scalars(select(ApiCall)).all()
    assert len(stored) == fake.reported  # every call stored at once
    assert all(call.delivery_id is not None for call in stored)


def test_a_worker_started_with_a_raised_ceiling_does_not_sleep_out_the_old_wait(
    client: FlaskClient, services: Services, worker: Worker, clock: Clock, fake: RecordingFake
) -> None:
    exhaust_the_create_budget(client, worker)
    assert len(fake.tickets) == 8  # two creates held back for about an hour

    limits = replace(LIMITS, hourly_ceiling=LIMITS.hourly_ceiling * 10)
    raised = governed_worker(services, fake, clock, limits)
    assert raised.wake_throttled() == 2
    drain(raised, clock)

    assert len(fake.tickets) == 10
    assert [d.state for d in deliveries(services)] == ["done"] * 10
    assert clock.now < datetime.now(UTC) + timedelta(minutes=10)  # minutes, not the hour


def test_waking_leaves_deliveries_that_wait_for_other_reasons_alone(
    client: FlaskClient, services: Services, worker: Worker, clock: Clock, fake: RecordingFake
) -> None:
    post(client, "a", "active")
    fake.fail["create"] = [TargetUnavailable("503")]
    worker.run_once()  # an ordinary retry, not a governor wait
    (delivery,) = deliveries(services)
    assert delivery.state == "pending" and delivery.next_attempt_at > clock.now

    assert worker.wake_throttled() == 0


def test_breaker_and_pause_never_spend_attempts_nor_dead_letter(
    client: FlaskClient, services: Services, clock: Clock, fake: RecordingFake
) -> None:
    worker = governed_worker(services, fake, clock, Limits(breaker_cooldown=30, slot_wait=0))
    post(client, "a", "active")
    # Autotask is down: the create fails, then each retry's marker lookup.
    fake.fail["create"] = [TargetUnavailable("503")]
    fake.fail["find"] = [TargetUnavailable("503")] * 4
    for _ in range(5):
        worker.run_once()
        clock.advance(seconds=1)  # RETRY_DELAYS are ≤ 0.2 s in the tests
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.attempts) == ("pending", 5)
    with services.transaction() as session:  # past its deadline: a failure would dead-letter
        session.execute(update(Delivery).values(deadline_at=clock.now - timedelta(hours=1)))
    for _ in range(3):
        clock.advance(seconds=5)
        worker.run_once()
    (delivery,) = deliveries(services)
    assert (delivery.state, delivery.attempts) == ("pending", 5)
    assert delivery.last_error is not None and "circuit breaker open" in delivery.last_error
    assert fake.calls == ["create"] + ["find"] * 4
    with services.transaction() as session:
        session.execute(update(Delivery).values(deadline_at=clock.now + timedelta(days=1)))
    clock.advance(seconds=30)  # the probe: a 429 pauses the integration
    fake.fail["find"] = [TargetRateLimited("thread threshold", retry_after=20)]
    worker.run_once()
    (delivery,) = deliveries(services)
    assert delivery.attempts == 6  # the probe was a real call that failed: it counts
    assert delivery.state == "pending"
    clock.advance(seconds=5)
    with services.transaction() as session:
        session.execute(update(Delivery).values(next_attempt_at=clock.now))
    worker.run_once()
    (delivery,) = deliveries(services)
    assert delivery.attempts == 6
    assert delivery.last_error is not None and "pause" in delivery.last_error
    assert fake.calls == ["create"] + ["find"] * 5


def test_a_governed_target_spends_no_call_when_throttled(
    services: Services, governor: Governor, integration_id: int, clock: Clock
) -> None:
    fake = FakeTarget()
    target = GovernedTarget(fake, governor, integration_id, "w1", profile=REST_PROFILE)
    add_calls(services, integration_id, *([1.0] * 8), now=clock.now)
    create = OutboundRequest(RequestAction.CREATE, "POST", ZONE + "Tickets", "{}", "json")
    with pytest.raises(Throttled):
        target.send(create)
    assert fake.calls == [] and fake.requests == []
    assert target.find_ticket_by_marker("aac-x") is None  # lookups use the reserve
    assert fake.calls == ["find"]


def test_errors_keep_their_kind_through_the_governed_target(
    governor: Governor, integration_id: int
) -> None:
    fake = FakeTarget(fail={"find": [TargetRejected("400")]})
    target = GovernedTarget(fake, governor, integration_id, "w1", profile=REST_PROFILE)
    with pytest.raises(TargetError) as caught:
        target.find_ticket_by_marker("aac-x")
    assert type(caught.value) is TargetRejected
    # and its slot is free again
    held: list[Any] = [
        governor.admit(integration_id, "Tickets", f"w{n}", creates=False) for n in range(3)
    ]
    assert len(held) == 3
