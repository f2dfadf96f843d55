"""Survival under failures (issue 14, R1 and R4): real processes over 127.0.0.1, on PostgreSQL.

A sender that retries every non-2xx answer and every connection error, as Alertmanager and
LogicMonitor do, posts while the connector's processes or its database are brought down; then
every event it got a 202 for must be stored exactly once (queued once; retries of an event whose
202 was lost recorded as duplicates) with exactly one delivery, and, once drained, its alert has
exactly one ticket.
Each test prints one line: attempted / acknowledged / lost / duplicated / dead-lettered.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from adapters.sandbox import Sandbox, SandboxServer
from connector.persistence.models import Alert, AlertEvent, Delivery
from connector.pipeline.ingest import DUPLICATE, QUEUED
from connector.pipeline.outbox import DeliveryState
from tests.conftest import HOOK_TOKEN, IN_CI, cannot_run, settings_for_tests
from tests.e2e.harness import (
    Connector,
    alert,
    alive,
    audit_lifecycles,
    audit_write_order,
    children,
    wait_until,
)
from tests.e2e.postgres_cluster import ClusterError, PostgresCluster

pytestmark = pytest.mark.e2e

#: The sender's first pause before a retry, doubled after each failure up to the longest.
FIRST_RETRY_SECONDS = 0.05
LONGEST_RETRY_SECONDS = 0.5
#: One attempt's timeout: a request stuck on a killed process fails and is retried.
ATTEMPT_SECONDS = 10.0
#: How long a failure may wait for a burst of requests in flight.
BURST_WAIT_SECONDS = 0.3


@dataclass(frozen=True)
class Answer:
    """One attempt: when it was sent and answered (monotonic), its status (None: no answer)."""

    sent: float
    answered: float
    status: int | None


@dataclass
class RetryingSender:
    """Posts each alert's events in order, each until a 2xx, retrying every other answer and
    every connection error."""

    base: str
    #: No retry is started after this (monotonic): the sender gives up, as a real one does.
    deadline: float
    #: The events of each alert, in order: the next is sent once the one before was acknowledged.
    lifecycle: tuple[str, ...] = ("active",)
    answers: list[Answer] = field(default_factory=list)
    #: Requests sent and not answered yet.
    in_flight: int = 0
    #: The events that got their 202: (alert index, status).
    acknowledged: set[tuple[int, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, index: int) -> None:
        """Post the events of alert `index` in order, each until acknowledged (or the deadline)."""
        for status in self.lifecycle:
            if not self._send_until_acknowledged(index, status):
                return

    def _send_until_acknowledged(self, index: int, status: str) -> bool:
        body = alert(index, status)
        pause = FIRST_RETRY_SECONDS
        while time.monotonic() < self.deadline:
            sent = time.monotonic()
            answer: int | None = None
            with self.lock:
                self.in_flight += 1
            try:
                answer = requests.post(
                    f"{self.base}/hooks/generic",
                    json=body,
                    headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
                    timeout=ATTEMPT_SECONDS,
                ).status_code
            except requests.RequestException:
                pass  # refused, reset or timed out: retried like any non-2xx
            with self.lock:
                self.in_flight -= 1
                self.answers.append(Answer(sent, time.monotonic(), answer))
                if answer is not None and 200 <= answer < 300:
                    self.acknowledged.add((index, status))
                    return True
            time.sleep(pause)  # the sender's own back-off, not a wait for a condition
            pause = min(pause * 2, LONGEST_RETRY_SECONDS)
        return False

    def start(self, count: int, threads: int, per_second: float) -> threading.Thread:
        """Send alerts 0 … count-1 from `threads` threads in the background; the thread to join.

        They come in bursts of `threads` alerts, as a sender's group flushes do, at `per_second`
        alerts a second on average (so the run spans the failures).
        """
        todo = iter(range(count))
        todo_lock = threading.Lock()
        started = time.monotonic()

        def sender_thread() -> None:
            while True:
                with todo_lock:
                    index = next(todo, None)
                if index is None:
                    return
                # The load's schedule (alerts arrive over time), not a wait for a condition.
                burst_at = started + (index // threads) * threads / per_second
                time.sleep(max(burst_at - time.monotonic(), 0.0))
                self.send(index)

        def run() -> None:
            senders = [threading.Thread(target=sender_thread) for _ in range(threads)]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()

        runner = threading.Thread(target=run, name="sender", daemon=True)
        runner.start()
        return runner

    def acknowledged_count(self) -> int:
        """How many events got their 202 so far."""
        with self.lock:
            return len(self.acknowledged)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter[int | None]:
        """The answers to attempts sent at or after `since` and answered by `until`, by status."""
        with self.lock:
            return Counter(
                a.status for a in self.answers if a.sent >= since and a.answered <= until
            )


def await_burst(sender: RetryingSender, in_flight: int) -> None:
    """Wait, at most BURST_WAIT_SECONDS, until `in_flight` requests are in flight: a failure
    then cuts requests (between bursts it mostly met idle processes: a request takes ~10 ms)."""
    deadline = time.monotonic() + BURST_WAIT_SECONDS
    while sender.in_flight < in_flight and time.monotonic() < deadline:
        time.sleep(0.002)


@dataclass(frozen=True)
class Outcome:
    """What became of the acknowledged events, by the connector's database and the sandbox."""

    attempted: int
    acknowledged: int
    lost: list[str]
    duplicated: list[str]
    dead_lettered: int
    #: Events recorded as duplicates: retries of an event whose 202 was lost.
    duplicate_events: int

    def line(self, name: str, extra: str) -> str:
        """The one line a survival test prints."""
        return (
            f"{name}: attempted {self.attempted} / acknowledged {self.acknowledged} / lost"
            f" {len(self.lost)} / duplicated {len(self.duplicated)} / dead-lettered"
            f" {self.dead_lettered} ({extra}, {self.duplicate_events} retries recorded as"
            " duplicates)"
        )


def audit(service: Connector, sandbox: Sandbox, alerts: int, sender: RetryingSender) -> Outcome:
    """Per acknowledged event: one queued event, one delivery, and its alert one ticket."""
    with service.services.transaction() as session:
        queued = Counter(
            (title, status)
            for title, status in session.execute(
                select(Alert.title, AlertEvent.status)
                .join(AlertEvent, AlertEvent.alert_id == Alert.id)
                .where(AlertEvent.disposition == QUEUED)
            )
        )
        deliveries = Counter(
            (title, status)
            for title, status in session.execute(
                select(Alert.title, AlertEvent.status)
                .join(Delivery, Delivery.alert_id == Alert.id)
                .join(AlertEvent, AlertEvent.id == Delivery.event_id)
            )
        )
        duplicate_events = session.scalar(
            select(func.count()).select_from(AlertEvent).where(AlertEvent.disposition == DUPLICATE)
        )
        dead = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.state == DeliveryState.DEAD)
        )
    tickets = Counter(ticket["title"] for ticket in sandbox.tickets_with_notes())
    lost, duplicated = [], []
    for index, status in sorted(sender.acknowledged):
        title = alert(index, status)["title"]
        found = (queued[(title, status)], deliveries[(title, status)], tickets[title])
        if min(found) == 0:
            lost.append(f"{title} {status} {found}")
        if max(found) > 1:
            duplicated.append(f"{title} {status} {found}")
    return Outcome(
        attempted=alerts * len(sender.lifecycle),
        acknowledged=len(sender.acknowledged),
        lost=lost,
        duplicated=duplicated,
        dead_lettered=int(dead or 0),
        duplicate_events=int(duplicate_events or 0),
    )


def assert_survived(outcome: Outcome, sender: RetryingSender, service: Connector) -> None:
    """Every event acknowledged, none lost or duplicated, no dead letter, all delivered."""
    assert outcome.acknowledged == outcome.attempted, "the sender gave up on some events"
    assert outcome.lost == [], outcome.lost[:5]
    assert outcome.duplicated == [], outcome.duplicated[:5]
    assert outcome.dead_lettered == 0
    assert service.deliveries_by_state() == {DeliveryState.DONE: outcome.attempted}
    # Nothing but connection errors (None) and 503s before the 202: never a 500, never a 4xx.
    assert set(sender.statuses()) <= {202, 503, None}, sender.statuses()


# -- R1: web processes SIGKILLed under load ------------------------------------------------------

#: Alerts R1 sends (each fired, acknowledged, cleared: three webhooks), from how many threads,
#: how many alerts a second: a steady load on both web processes for about 12 s (some 15
#: kills), and a drain, well under a minute on 2 cores.
R1_ALERTS = 120
R1_LIFECYCLE = ("active", "acknowledged", "cleared")
R1_SENDERS = 8
R1_PER_SECOND = 10
#: Fewer kills would not prove much: with a kill every 0.5–1 s the run easily makes these.
R1_MIN_KILLS = 8


def serving(pid: int) -> bool:
    """Whether a gthread web process has served: its request threads exist only from its first
    request on, so one with a single thread may still be loading the app."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return False
    threads = next(line for line in status.splitlines() if line.startswith("Threads:"))
    return int(threads.split()[1]) > 1


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_r1_web_processes_killed_under_load_lose_and_duplicate_no_acknowledged_event(
    connector_settings: dict[str, Any],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    """R1: SIGKILL a web process every 0.5–1 s while a retrying sender posts each alert's fire,
    acknowledgement and clear; the arbiter respawns it; every acknowledged event is stored and
    delivered exactly once, and each alert has exactly one ticket."""
    rng = random.Random(14)  # the kill moments vary with the machine's speed anyway
    service = Connector(dict(connector_settings, WEB_CONCURRENCY=2), tmp_path)
    kills = 0
    try:
        serve = service.start_web()
        # `serve --no-worker` forks one child, gunicorn's arbiter; its children serve the web.
        wait_until(lambda: len(alive(children(serve.pid))) == 1, 30, "the gunicorn arbiter")
        (arbiter,) = alive(children(serve.pid))
        wait_until(lambda: len(alive(children(arbiter))) == 2, 30, "two web processes")
        service.start_worker()
        started = time.monotonic()
        sender = RetryingSender(service.base, started + 120, R1_LIFECYCLE)
        sending = sender.start(R1_ALERTS, R1_SENDERS, R1_PER_SECOND)
        while sending.is_alive():
            # The next kill 0.5–1 s after the last, during a burst of requests.
            sending.join(timeout=rng.uniform(0.5, 1.0))
            await_burst(sender, R1_SENDERS // 2)
            # Only one that serves: two in three kills hit one still loading the app when any
            # was picked. None: both are being respawned.
            web = sorted(pid for pid in alive(children(arbiter)) if serving(pid))
            if web and sending.is_alive():
                try:
                    os.kill(rng.choice(web), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:  # it died on its own meanwhile
                    pass
        assert serve.poll() is None and arbiter in alive({arbiter}), "the arbiter must survive"
        sent_in = time.monotonic() - started
        service.drain(timeout=90)
        drained_after = time.monotonic() - started - sent_in
        outcome = audit(service, sandbox, R1_ALERTS, sender)
        answers = sender.statuses()
        failed = sum(n for status, n in answers.items() if status != 202)
        print(
            outcome.line(
                "R1",
                f"{kills} web processes SIGKILLed, {failed} attempts failed and retried"
                f" ({answers[None]} connection errors, {answers[503]} 503), sent in"
                f" {sent_in:.1f} s, drained {drained_after:.1f} s later",
            )
        )
        assert_survived(outcome, sender, service)
        # The worker never noticed: one ticket each, completed, the acknowledgement noted once,
        # every write in order.
        audit_lifecycles(sandbox, R1_ALERTS)
        audit_write_order(sandbox)
        assert kills >= R1_MIN_KILLS
        assert failed > 0, "no kill hit a request: the test proved nothing"
    finally:
        service.stop()


# -- R4: PostgreSQL crashed and restarted during the run ---------------------------------------

#: Alerts R4 sends, from how many threads, how many a second: some 5 s of load besides the
#: outages, each crash a share of the way through.
R4_ALERTS = 150
R4_SENDERS = 6
R4_PER_SECOND = 30
R4_RESTARTS = 3
#: From PostgreSQL back up until the connector is ready again (the design's bound).
HEALTHY_AGAIN_SECONDS = 30


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own (the shared one must never be restarted)."""
    required = IN_CI or bool(os.environ.get("CONNECTOR_TEST_POSTGRES_URL"))
    try:
        cluster = PostgresCluster()
    except (ClusterError, OSError) as e:
        cannot_run(f"cannot make a private PostgreSQL cluster: {e}", required=required)
    try:
        cluster.init()
    except ClusterError as e:
        cluster.remove()
        cannot_run(f"cannot start a private PostgreSQL cluster: {e}", required=required)
    try:
        yield cluster
    finally:  # on every path: no server of a test outlives it
        cluster.remove()


def ready(base: str) -> bool:
    """Whether /readyz says the database, its migrations and a worker are all right."""
    try:
        return requests.get(f"{base}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def crash_once_acknowledged(
    cluster: PostgresCluster, sender: RetryingSender, acknowledged: int
) -> tuple[float, float]:
    """Once `acknowledged` alerts got their 202, crash PostgreSQL, keep it down until a webhook
    was answered 503, start it again; when it was down (monotonic, from and until)."""
    wait_until(
        lambda: sender.acknowledged_count() >= acknowledged,
        60,
        f"{acknowledged} alerts acknowledged before a crash",
    )
    await_burst(sender, R4_SENDERS // 2)
    cluster.crash()
    down = time.monotonic()
    wait_until(
        lambda: sender.statuses(since=down)[503] > 0,
        30,
        lambda: f"a 503 while PostgreSQL is down, not {sender.statuses(since=down)}",
    )
    up = time.monotonic()
    cluster.start()
    return down, up


@pytest.mark.postgres
def test_r4_postgresql_crashed_three_times_loses_nothing_acknowledged(
    private_postgres: PostgresCluster,
    secret_key: str,
    integration_config: dict[str, object],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    """R4: `pg_ctl stop -m immediate` then start, 3 times while a retrying sender posts; webhooks
    answer 503 while it is down, the same worker resumes on its own, all tickets exactly once."""
    settings = settings_for_tests(private_postgres.url, secret_key, integration_config)
    # A delivery whose commit the crash cut off stays leased until the lease runs out: 10 s
    # keeps the drain short and is still far longer than any one call to the sandbox.
    settings["WORKER_LEASE_SECONDS"] = 10
    service = Connector(settings, tmp_path)
    outages: list[tuple[float, float]] = []
    try:
        service.start_web()
        worker = service.start_worker()
        # Its first heartbeat: each crash meets a running worker (a starting one has its test).
        wait_until(lambda: ready(service.base), 60, "the worker's first heartbeat")
        sender = RetryingSender(service.base, deadline=time.monotonic() + 120)
        sending = sender.start(R4_ALERTS, R4_SENDERS, R4_PER_SECOND)
        for restart in range(1, R4_RESTARTS + 1):
            # Spread over the run: each crash once another share of the alerts was acknowledged.
            share = restart * R4_ALERTS // (R4_RESTARTS + 1)
            outages.append(crash_once_acknowledged(private_postgres, sender, share))
        back = time.monotonic()
        wait_until(lambda: ready(service.base), HEALTHY_AGAIN_SECONDS, "/readyz to answer 200")
        ready_after = time.monotonic() - back
        sending.join(timeout=120)
        assert not sending.is_alive(), "the sender did not finish"
        finished = time.monotonic()
        service.drain(timeout=90)
        drained_after = time.monotonic() - finished
        assert worker.poll() is None, "the worker process must have lived through every crash"
        outcome = audit(service, sandbox, R4_ALERTS, sender)
        during = sum((sender.statuses(since=down, until=up) for down, up in outages), Counter())
        print(
            outcome.line(
                "R4",
                f"{R4_RESTARTS} crashes, answers while down {dict(during)}, in all"
                f" {dict(sender.statuses())}, ready {ready_after:.1f} s after the last"
                f" restart, drained {drained_after:.1f} s after the sender finished",
            )
        )
        # While PostgreSQL was down: 503 only (a sender retries it), never a 202 nor a 4xx.
        assert set(during) == {503}, during
        assert_survived(outcome, sender, service)
    finally:
        service.stop()


@pytest.mark.postgres
def test_a_worker_started_while_postgresql_is_down_waits_for_it_then_delivers(
    private_postgres: PostgresCluster,
    secret_key: str,
    integration_config: dict[str, object],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    """A worker (re)started by its process manager during an outage must not die at its start
    checks: it waits for the database, then works."""
    settings = settings_for_tests(private_postgres.url, secret_key, integration_config)
    service = Connector(settings, tmp_path)  # migrated while the database is up
    try:
        private_postgres.crash()
        worker = service.start_worker()
        log = tmp_path / "worker-0.log"

        def waiting() -> bool:
            if worker.poll() is not None:
                raise AssertionError(f"the worker exited with {worker.returncode}:\n{log_of(log)}")
            return "worker.waiting_for_database" in log_of(log)

        wait_until(waiting, 60, lambda: f"the worker to wait for the database:\n{log_of(log)}")
        private_postgres.start()
        service.start_web()
        assert service.post(alert(1, "active")).status_code == 202
        wait_until(lambda: len(sandbox.tickets_with_notes()) == 1, 60, "the alert's ticket")
        assert worker.poll() is None
    finally:
        service.stop()


def log_of(path: Path) -> str:
    """What a process wrote so far ("" before it wrote anything)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
