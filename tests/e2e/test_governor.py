"""The governor end to end: worker processes against the sandbox's limits and outages.

- A low hourly ceiling holds the calls under it while 2 workers (all their threads) compete (the
  sandbox's call log is the witness), with 0 × 429 from its 3-thread limit; with a higher
  ceiling all drains, once.
- An outage opens the breaker after ≤ 5 consecutive failures; then one probe per cooldown; after
  it the backlog drains, and attempts were spent only by calls actually made.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sandbox import Sandbox, SandboxServer
from adapters.sandbox.faults import load_plan
from connector.config import DEFAULTS
from connector.persistence.models import Delivery, GovernorState
from tests.e2e.harness import Connector, alert, wait_until

pytestmark = pytest.mark.e2e

#: Low enough to be reached in seconds: its creates' share (90 %) is 36 calls, fewer than ALERTS.
CEILING = 40
#: Alerts of the ceiling test: more than the creates' budget, so some must be held back.
ALERTS = 50
#: The breaker's cooldown in these tests: one probe per 2 s.
COOLDOWN = 2.0
#: A pause in the outage's calls this long ends a burst: far longer than the gaps inside the
#: opening burst (retries 0.05-0.2 s apart, more on a loaded machine), shorter than a cooldown
#: between two probes.
BURST_GAP = 1.5
#: A worker's environment for an hourly ceiling no test here reaches.
UNLIMITED = {"CONNECTOR_API_HOURLY_CEILING": "10000"}


@pytest.fixture
def connector(
    connector_settings: dict[str, Any], sandbox_server: SandboxServer, tmp_path: Path
) -> Iterator[Connector]:
    """A running connector web process with a low ceiling and a 2 s breaker cooldown."""
    settings = {
        **connector_settings,
        "API_HOURLY_CEILING": CEILING,
        "BREAKER_COOLDOWN_SECONDS": COOLDOWN,
    }
    service = Connector(settings, tmp_path)
    try:
        service.start_web()
        yield service
    finally:
        service.stop()


def settled(sandbox: Sandbox, quiet: float) -> bool:
    """No call reached the sandbox for `quiet` seconds."""
    calls = sandbox.calls()
    return bool(calls) and time.monotonic() - calls[-1].started > quiet


def untried(connector: Connector) -> int:
    """Deliveries no worker has looked at yet, or one is looking at now."""
    with connector.services.transaction() as session:
        return len(
            session.scalars(
                select(Delivery.id).where(
                    (Delivery.state == "in_progress")
                    | ((Delivery.state == "pending") & Delivery.last_error.is_(None))
                )
            ).all()
        )


def waiting_for_other_reasons(connector: Connector) -> set[str]:
    """Why the pending deliveries held back for anything but the hourly budget wait."""
    with connector.services.transaction() as session:
        errors = session.scalars(
            select(Delivery.last_error).where(Delivery.state == "pending")
        ).all()
    return {e or "" for e in errors if not (e or "").startswith("throttled: hourly API budget")}


def stop_workers(connector: Connector, workers: list[Any]) -> None:
    for process in workers:
        process.send_signal(signal.SIGTERM)
    for process in workers:
        process.wait(timeout=30)


def test_calls_stay_under_the_ceiling_and_the_thread_limit_then_drain_once_raised(
    connector: Connector, sandbox: Sandbox
) -> None:
    sandbox.faults.set(load_plan({"latency_ms": 30}))  # calls overlap: slots are needed
    connector.post_all(alert(i, "active") for i in range(ALERTS))
    workers = [connector.start_worker() for _ in range(2)]  # many lanes for 3 slots
    wait_until(lambda: len(sandbox.calls()) >= CEILING * 0.8, 60, "the budget to be used")
    wait_until(lambda: settled(sandbox, 1.0), 60, "the workers to stop calling")
    # Each worker's threads take one delivery at a time: wait until every one has been tried
    # and every one still waiting waits for the budget (one that found the 3 slots taken is
    # tried again a second later, and is then held back by the budget).
    wait_until(
        lambda: untried(connector) == 0 and not waiting_for_other_reasons(connector),
        60,
        lambda: (
            f"every waiting delivery to wait for the budget: {waiting_for_other_reasons(connector)}"
        ),
    )
    calls = sandbox.calls()
    assert CEILING * 0.8 <= len(calls) <= CEILING  # the whole test is inside one 60-min window
    assert [c for c in calls if c.status == 429] == []
    assert max(c.concurrent for c in calls) <= 3
    states = connector.deliveries_by_state()
    assert states.get("dead", 0) == 0 and states.get("pending", 0) > 0
    with connector.services.transaction() as session:
        waiting = list(session.scalars(select(Delivery).where(Delivery.state == "pending")))
    assert [d.attempts for d in waiting] == [0] * len(waiting)  # held back: no attempt spent
    assert all((d.last_error or "").startswith("throttled: hourly API budget") for d in waiting), {
        d.last_error for d in waiting
    }

    stop_workers(connector, workers)
    # Restarted with a higher ceiling: the starting worker wakes what waits for the old window.
    connector.start_worker(UNLIMITED)
    connector.drain(timeout=60)
    assert connector.deliveries_by_state() == {"done": ALERTS}
    tickets = sandbox.tickets_with_notes()
    titles = sorted(t["title"] for t in tickets)
    assert titles == [f"E2E alert {i:05d}" for i in range(ALERTS)]  # each once: no duplicate
    assert [c for c in sandbox.calls() if c.status == 429] == []


def outage_bursts(sandbox: Sandbox) -> list[list[float]]:
    """The start times of the calls the outage failed, split where no call came for BURST_GAP."""
    bursts: list[list[float]] = []
    for started in (c.started for c in sandbox.calls() if c.fault == "outage"):
        if bursts and started - bursts[-1][-1] < BURST_GAP:
            bursts[-1].append(started)
        else:
            bursts.append([started])
    return bursts


def spent_attempts(connector: Connector) -> int:
    """Attempts charged to every delivery."""
    with connector.services.transaction() as session:
        return sum(d.attempts for d in session.scalars(select(Delivery)))


def test_an_outage_opens_the_breaker_then_one_probe_per_cooldown_then_the_backlog_drains(
    connector: Connector, sandbox: Sandbox
) -> None:
    sandbox.faults.set(load_plan({"outage": True}))
    connector.post_all(alert(i, "active") for i in range(10))
    # The outage's failed calls count against the hourly budget: the low CEILING is the other
    # test's, and every lane of both workers may fail a call before the breaker opens.
    workers = [connector.start_worker(UNLIMITED) for _ in range(2)]
    wait_until(lambda: len(outage_bursts(sandbox)) >= 3, 60, "two probes after the opening")
    # A claim charges the attempt of every delivery in its batch up front and a throttled pass
    # hands it back, so while workers run, `attempts` includes passes about to be handed back:
    # count them at rest, with the workers stopped (each finishes its batch on SIGTERM).
    stop_workers(connector, workers)
    failed = [c for c in sandbox.calls() if c.fault == "outage"]
    bursts = outage_bursts(sandbox)
    # It opens at the 5th consecutive failure (every other thread of both workers may have one
    # call in flight); then one probe per 2 s cooldown, each failing alone.
    in_flight = 2 * int(DEFAULTS["WORKER_THREADS"]) - 1
    assert len(bursts[0]) <= 5 + in_flight, [len(burst) for burst in bursts]
    assert [len(burst) for burst in bursts[1:]] == [1] * (len(bursts) - 1)
    probes = [burst[0] for burst in bursts[1:]]
    # A probe goes once the cooldown since the previous one failed is over (0.1 s: two clocks).
    assert len(probes) >= 2 and all(b - a > COOLDOWN - 0.1 for a, b in pairwise(probes)), probes
    with connector.services.transaction() as session:
        (state,) = session.scalars(select(GovernorState))
        assert (state.breaker, state.failures) == ("open", len(failed))
        assert {d.state for d in session.scalars(select(Delivery))} == {"pending"}
    # Attempts were spent by the calls made, one each, and none while the breaker held them.
    assert spent_attempts(connector) == len(failed)

    sandbox.faults.clear()
    connector.start_worker(UNLIMITED)
    connector.drain(timeout=60)
    assert connector.deliveries_by_state() == {"done": 10}
    assert len(sandbox.tickets_with_notes()) == 10
    assert spent_attempts(connector) == len(failed) + 10  # then one successful attempt each
