"""R11: a worker stopped under load. SIGTERM: its calls in flight finish and its deliveries are
handed back within 30 s; SIGKILL: its stalled claims are taken over once their lease runs out.
Either way every alert becomes exactly one ticket.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.sandbox import Sandbox, SandboxServer
from adapters.sandbox.faults import load_plan
from connector.persistence.models import Delivery
from tests.e2e.harness import Connector, alert, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

#: Alerts posted in each round; every sandbox call takes CALL_MS, so many are in flight at once.
ALERTS = 30
CALL_MS = 700
#: The delivery lease of the worker that is killed (its claims are free again after it).
LEASE_SECONDS = 6
#: How long a stopped worker may take (R11): its calls finish, its deliveries are handed back.
STOP_SECONDS = 30


def in_progress(service: Connector) -> list[tuple[int, str | None]]:
    """(id, lease owner) of every delivery some worker holds."""
    with service.services.transaction() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.lease_owner).where(Delivery.state == "in_progress")
        ).all()
    return [(int(row_id), owner) for row_id, owner in rows]


def dead_letters(service: Connector) -> int:
    """Deliveries that failed for good."""
    with service.services.transaction() as session:
        count = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.state == "dead")
        )
    return int(count or 0)


def started_busy(service: Connector, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker, once it holds several deliveries at once."""
    worker = service.start_worker(extra)
    wait_until(lambda: len(in_progress(service)) >= 3, 60, "the worker to be busy")
    return worker


def assert_one_ticket_each(sandbox: Sandbox, count: int) -> None:
    """Exactly one ticket per alert posted so far."""
    titles = sorted(ticket["title"] for ticket in sandbox.tickets_with_notes())
    assert titles == [f"E2E alert {i:05d}" for i in range(count)]


def test_sigterm_and_sigkill_under_load_lose_and_duplicate_nothing(
    connector_settings: dict[str, Any],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    """R11 on PostgreSQL: SIGTERM, then SIGKILL, each with calls in flight."""
    sandbox.faults.set(load_plan({"latency_ms": CALL_MS}))
    service = Connector(connector_settings, tmp_path)
    try:
        service.start_web()

        # SIGTERM: the process ends within STOP_SECONDS and holds no delivery any more.
        service.post_all(alert(i, "active") for i in range(ALERTS))
        worker = started_busy(service, {})
        worker.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert worker.wait(timeout=STOP_SECONDS + 5) == 0
        took = time.monotonic() - stopping
        assert in_progress(service) == []
        assert took <= STOP_SECONDS, f"the worker took {took:.1f} s to stop"

        # SIGKILL: its claims stay in progress until their lease runs out, then another
        # worker takes them over.
        service.post_all(alert(i, "active") for i in range(ALERTS, 2 * ALERTS))
        worker = started_busy(service, {"CONNECTOR_WORKER_LEASE_SECONDS": str(LEASE_SECONDS)})
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        stalled = in_progress(service)
        assert stalled, "the killed worker held no delivery"
        service.start_worker()
        killed_owners = {owner for _, owner in stalled}
        wait_until(
            lambda: not any(owner in killed_owners for _, owner in in_progress(service)),
            LEASE_SECONDS + 30,
            "the killed worker's claims to be taken over",
        )
        service.drain(timeout=120)
        assert_one_ticket_each(sandbox, 2 * ALERTS)
        assert dead_letters(service) == 0
        print(
            f"R11: {2 * ALERTS} alerts; SIGTERM with calls in flight: stopped in {took:.1f} s,"
            f" none held; SIGKILL holding {len(stalled)}: taken over; tickets"
            f" {len(sandbox.tickets_with_notes())}, duplicated 0, lost 0, dead-lettered 0"
        )
    finally:
        service.stop()
