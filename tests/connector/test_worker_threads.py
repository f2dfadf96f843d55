"""The worker's threads against the sandbox over HTTP (in this process), on SQLite and PostgreSQL.

With a small latency on every sandbox call, three threads keep three calls in flight and never
more (0 × 429), every alert gets one ticket with its changes in order; one thread still works as
before; a stop hands deliveries in flight back; the heartbeat row lives as long as the worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from adapters.sandbox import ApiUser, LimitSettings, Sandbox, SandboxConfig
from connector.errors import UnavailableError
from connector.persistence.models import Delivery, WorkerHeartbeat, utcnow
from connector.pipeline import heartbeat
from connector.pipeline.outbox import Outbox
from connector.pipeline.worker import Worker
from connector.services import Services
from tests.conftest import HOOK_TOKEN
from tests.e2e.harness import alert, audit_lifecycles, audit_write_order, wait_until

#: Seconds every sandbox call takes: enough for calls of three threads to overlap.
LATENCY = 0.05


class Gate:
    """The sandbox's sleep: calls wait here while the gate is shut (then none sleeps)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.opened.set()
        self._lock = threading.Lock()
        self.held = 0

    def sleep(self, seconds: float) -> None:
        if self.opened.is_set():
            # The simulated duration of an Autotask call (the sandbox's latency), not a wait
            # for a condition: the tests wait on their conditions with deadlines.
            time.sleep(seconds)
            return
        with self._lock:
            self.held += 1
        self.opened.wait(timeout=30)
        with self._lock:
            self.held -= 1


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.opened.set()


@pytest.fixture
def sandbox(api_user: ApiUser, gate: Gate) -> Sandbox:
    """A sandbox whose every call takes LATENCY seconds (or waits at the gate)."""
    limits = LimitSettings(latency_tiers=[], latency_seconds=LATENCY)
    return Sandbox(SandboxConfig(user=api_user, limits=limits), sleep=gate.sleep)


@pytest.fixture
def connector_settings(connector_settings: dict[str, object]) -> dict[str, object]:
    """The test settings with a heartbeat fast enough to see it beat."""
    return {**connector_settings, "WORKER_HEARTBEAT_SECONDS": 0.2}


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


def post_lifecycles(client: FlaskClient, count: int) -> None:
    """Every alert fired, then every one acknowledged, then every one cleared."""
    for status in ("active", "acknowledged", "cleared"):
        for index in range(count):
            response = client.post(
                "/hooks/generic",
                json=alert(index, status),
                headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
            )
            assert response.status_code == 202, response.get_json()


def unfinished(services: Services) -> int:
    with services.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.state.in_(("pending", "in_progress")))
        )
    return int(count or 0)


def states(services: Services) -> dict[str, int]:
    with services.transaction() as session:
        rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
        return {state: int(count) for state, count in rows}


def heartbeats(services: Services) -> list[tuple[str, int]]:
    with services.transaction() as session:
        return [(h.worker_id, h.threads) for h in session.scalars(select(WorkerHeartbeat))]


@contextmanager
def running(worker: Worker) -> Iterator[threading.Event]:
    """Run the worker in a thread; on leaving, stop it and check `run` returned."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="test-worker", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "Worker.run did not return after stop"


def drain(services: Services, timeout: float = 120) -> None:
    wait_until(lambda: unfinished(services) == 0, timeout, "the outbox to drain")


def peak_by_endpoint(sandbox: Sandbox) -> dict[str, int]:
    """The most calls in flight at once per endpoint, as the sandbox's thread limit counted."""
    peaks: dict[str, int] = {}
    for call in sandbox.calls():
        peaks[call.endpoint] = max(peaks.get(call.endpoint, 0), call.concurrent)
    return peaks


@pytest.mark.timeout(300)
def test_three_threads_keep_three_calls_in_flight_never_more_each_alert_in_order(
    client: FlaskClient, services: Services, sandbox: Sandbox
) -> None:
    count = 15  # five times the lanes: every lane always has another alert to work on
    post_lifecycles(client, count)
    worker = Worker(services, threads=3)
    with running(worker):
        drain(services)
    assert states(services) == {"done": 3 * count}
    calls = sandbox.calls()
    assert [c for c in calls if c.status == 429] == []
    peaks = peak_by_endpoint(sandbox)
    assert peaks["Tickets"] == 3  # the creates of three alerts at once
    assert max(peaks.values()) <= 3
    audit_lifecycles(sandbox, count)
    audit_write_order(sandbox)
    assert heartbeats(services) == []  # gone with the clean stop


@pytest.mark.timeout(300)
def test_one_thread_works_one_call_at_a_time_as_before(
    client: FlaskClient, services: Services, sandbox: Sandbox
) -> None:
    count = 8
    post_lifecycles(client, count)
    worker = Worker(services, threads=1)
    assert worker.threads == 1
    with running(worker):
        wait_until(lambda: heartbeats(services) != [], 30, "the heartbeat")
        assert heartbeats(services) == [(worker.worker_id, 1)]
        drain(services)
    assert states(services) == {"done": 3 * count}
    assert max(peak_by_endpoint(sandbox).values()) == 1
    audit_lifecycles(sandbox, count)
    audit_write_order(sandbox)


def post_all(client: FlaskClient, count: int, *statuses: str) -> None:
    for status in statuses:
        for index in range(count):
            response = client.post(
                "/hooks/generic",
                json=alert(index, status),
                headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
            )
            assert response.status_code == 202, response.get_json()


@pytest.mark.timeout(300)
def test_a_stop_hands_deliveries_in_flight_back_and_another_worker_finishes_them(
    client: FlaskClient, services: Services, sandbox: Sandbox, gate: Gate
) -> None:
    count = 6
    post_all(client, count, "active")
    with running(Worker(services, threads=3)):
        drain(services)
    post_all(client, count, "acknowledged", "cleared")
    gate.opened.clear()  # every call now waits at the gate: three deliveries in flight
    worker = Worker(services, threads=3)
    stop = threading.Event()
    run = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    run.start()
    wait_until(lambda: gate.held == 3, 60, "three calls in flight")
    stop.set()
    gate.opened.set()  # the calls in flight are answered; no step follows them
    run.join(timeout=60)
    assert not run.is_alive(), "Worker.run did not return after stop"

    with services.transaction() as session:
        every = list(session.scalars(select(Delivery)))
    assert [d.id for d in every if d.lease_owner is not None] == []  # none left claimed
    assert {d.state for d in every} == {"pending", "done"}
    # A delivery stopped between its steps keeps the steps done, is due again, attempt unspent.
    part_done = [d for d in every if d.state == "pending" and d.progress > 0]
    multi_step = any(len((d.plan or {}).get("steps", [])) > 1 for d in every)
    assert part_done or not multi_step  # those in flight were stopped between their steps
    for delivery in part_done:
        assert (delivery.attempts, delivery.last_error) == (0, None)
    assert heartbeats(services) == []

    with running(Worker(services, threads=3)):
        drain(services)
    assert states(services) == {"done": 3 * count}
    assert [c for c in sandbox.calls() if c.status == 429] == []
    audit_lifecycles(sandbox, count)
    audit_write_order(sandbox)


def test_the_heartbeat_beats_while_running_prunes_the_long_dead_and_goes_on_stop(
    services: Services,
) -> None:
    long_ago = utcnow() - timedelta(hours=2)
    recently = utcnow() - timedelta(minutes=5)
    with services.transaction() as session:
        for worker_id, at in (("dead", long_ago), ("quiet", recently)):
            session.add(WorkerHeartbeat(worker_id=worker_id, threads=3, started_at=at, beat_at=at))
    worker = Worker(services, worker_id="w-beat", threads=2)

    def beat_at() -> Any:
        with services.transaction() as session:
            row = session.get(WorkerHeartbeat, "w-beat")
            return row.beat_at if row is not None else None

    with running(worker):
        wait_until(lambda: beat_at() is not None, 30, "the first beat")
        first = beat_at()
        wait_until(lambda: beat_at() > first, 30, "a second beat")
        assert sorted(heartbeats(services)) == [("quiet", 3), ("w-beat", 2)]
        with services.transaction() as session:
            alive = heartbeat.alive(session, utcnow(), 60)
            assert [h.worker_id for h in alive] == ["w-beat"]
    assert heartbeats(services) == [("quiet", 3)]


def test_a_database_outage_neither_stops_the_lanes_nor_the_heartbeat(
    client: FlaskClient,
    services: Services,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = threading.Event()
    down.set()
    failures: list[str] = []

    def failing(real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if down.is_set():
                failures.append(name)
                raise UnavailableError("the database cannot take the request now; retry")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(heartbeat, "beat", failing(heartbeat.beat, "beat"))
    monkeypatch.setattr(Outbox, "claim", failing(Outbox.claim, "claim"))
    post_lifecycles(client, 3)
    worker = Worker(services, threads=3)
    with running(worker):
        wait_until(lambda: {"beat", "claim"} <= set(failures), 30, "the worker to meet the outage")
        down.clear()
        wait_until(lambda: heartbeats(services) != [], 30, "a beat after the outage")
        drain(services)
    assert states(services) == {"done": 9}
    audit_lifecycles(sandbox, 3)
