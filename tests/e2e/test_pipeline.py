"""The pipeline end to end: real web and worker processes, the sandbox over HTTP, both databases.

Every test ends with an audit of the sandbox: exactly one ticket per alert (0 lost, 0 duplicated),
with the mapped priority, and the alert's changes applied in order.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from adapters.sandbox import Sandbox, SandboxServer
from adapters.sandbox.faults import load_plan
from connector.persistence.models import TenantMapping
from tests.e2e.harness import (
    Connector,
    alert,
    audit_lifecycles,
    audit_write_order,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def connector(
    connector_settings: dict[str, Any], sandbox_server: SandboxServer, tmp_path: Path
) -> Iterator[Connector]:
    """A running connector web process (workers are started by each test)."""
    service = Connector(connector_settings, tmp_path)
    try:
        service.start_web()
        yield service
    finally:
        service.stop()


def fire_acknowledge_clear(connector: Connector, count: int) -> None:
    """Post every alert active, then acknowledged, then cleared (no waiting in between)."""
    for status in ("active", "acknowledged", "cleared"):
        connector.post_all(alert(i, status) for i in range(count))


BOTH_APIS = pytest.mark.parametrize("api_flavour", ["rest", "soap"], indirect=True)
#: For the slowest campaigns: each API on one database (SOAP on SQLite, REST on PostgreSQL, both
#: against opaque errors), instead of every combination.
EACH_API_ONCE = pytest.mark.parametrize(
    ("database_url", "api_flavour"),
    [("sqlite", "soap"), pytest.param("postgresql", "rest", marks=pytest.mark.postgres)],
    indirect=True,
)


@pytest.fixture
def api_flavour(request: pytest.FixtureRequest) -> str:
    """REST unless the test is parametrized with both APIs."""
    return str(getattr(request, "param", "rest"))


#: Alerts of the single-worker campaign: each goes through fire, acknowledge and clear while the
#: others are posted (eight senders at once), on both databases and both APIs. More alerts than
#: the worker's lanes, so lifecycles compete; few enough to prove the point, not to soak.
CAMPAIGN = 30


@BOTH_APIS
def test_a_campaign_of_alerts_fired_acknowledged_cleared_become_completed_tickets(
    connector: Connector, sandbox: Sandbox, api_flavour: str
) -> None:
    connector.start_worker()
    fire_acknowledge_clear(connector, CAMPAIGN)
    connector.drain(timeout=180)  # it drains in seconds when idle: room for a loaded machine
    assert connector.deliveries_by_state() == {"done": 3 * CAMPAIGN}
    audit_lifecycles(sandbox, CAMPAIGN)
    if api_flavour == "rest":
        audit_write_order(sandbox)  # the call log keeps REST bodies; SOAP order shows in notes


def test_repeats_and_concurrent_duplicates_make_one_ticket_per_alert(
    connector: Connector, sandbox: Sandbox
) -> None:
    alerts = [alert(i, "active") for i in range(20)]
    for body in alerts:  # each webhook three times in a row
        for _ in range(3):
            assert connector.post(body).status_code == 202
    connector.post_all([body for body in alerts for _ in range(10)], threads=10)  # 10× at once
    connector.start_worker()
    connector.drain(timeout=60)
    tickets = sandbox.tickets_with_notes()
    assert sorted(t["title"] for t in tickets) == sorted(a["title"] for a in alerts)
    assert connector.deliveries_by_state() == {"done": 20}


@EACH_API_ONCE
@pytest.mark.timeout(600)  # 6 worker processes start and die, 3 at a time
def test_worker_killed_after_autotask_answered_the_create_loses_and_duplicates_nothing(
    connector: Connector, sandbox: Sandbox
) -> None:
    kills = 6  # two rounds of three workers, each killed at the dangerous moment
    crashing = {
        "CONNECTOR_FAULTPOINT": "after_create:1",  # SIGKILL after Autotask answered, before COMMIT
        "CONNECTOR_WORKER_BATCH": "1",  # claim one at a time: a dead worker holds one lease
        "CONNECTOR_WORKER_THREADS": "1",  # and works on one: each kill is one create
        # Longer than any one call may take (5 s to connect, 5 s to read): a worker that is alive
        # but slowed down by a loaded machine keeps its delivery, so no second worker sends the
        # same create before the first one's ticket can be found by its marker. (1 s made
        # duplicates under load.) A killed worker's delivery is taken over once it runs out.
        "CONNECTOR_WORKER_LEASE_SECONDS": "15",
    }
    connector.post_all(alert(i, "active") for i in range(kills))
    killed = 0
    running = [connector.start_worker(crashing) for _ in range(3)]

    def more_killed() -> bool:
        """Replace every worker that died at the faultpoint; whether any had."""
        nonlocal killed
        dead = [process for process in running if process.poll() is not None]
        for process in dead:
            assert process.returncode == -signal.SIGKILL, f"a worker exited {process.returncode}"
            running.remove(process)
            killed += 1
            if killed + len(running) < kills:
                running.append(connector.start_worker(crashing))
        return bool(dead)

    while killed < kills:  # at most `kills` rounds: each one kills a worker or fails
        wait_until(
            more_killed,
            90,  # a worker's start, claim and create take seconds, even on a loaded machine
            lambda: (
                f"a worker to die at the faultpoint ({killed} of {kills} so far;"
                f" worker logs in {connector.log_dir})"
            ),
        )
    assert len(sandbox.tickets_with_notes()) == kills  # every create was committed in Autotask
    connector.start_worker()  # a healthy worker takes over the expired leases
    connector.drain(timeout=90)
    tickets = sandbox.tickets_with_notes()
    assert sorted(t["title"] for t in tickets) == [f"E2E alert {i:05d}" for i in range(kills)]
    lookups = [c for c in sandbox.calls() if c.operation.startswith("query")]
    assert len(lookups) >= kills  # every orphaned create was resolved by its marker


@BOTH_APIS
def test_ambiguous_creates_are_resolved_by_marker_without_duplicates(
    connector: Connector, sandbox: Sandbox
) -> None:
    sandbox.faults.set(load_plan({"ambiguous_create": {"mode": "drop", "rate": 0.3}, "seed": 7}))
    connector.start_worker()
    fire_acknowledge_clear(connector, 20)  # 20 creates: about 6 dropped at a rate of 0.3
    connector.drain(timeout=120)
    audit_lifecycles(sandbox, 20)
    dropped = [c for c in sandbox.calls() if c.fault == "drop"]
    assert dropped, "the fault never fired"
    assert connector.deliveries_by_state() == {"done": 60}


def test_sandbox_outage_then_recovery_delivers_everything_in_order(
    connector: Connector, sandbox: Sandbox
) -> None:
    sandbox.faults.set(load_plan({"outage": True}))
    connector.start_worker()
    fire_acknowledge_clear(connector, 20)
    wait_until(  # the breaker opens after 5 (BREAKER_FAILURES) consecutive failures
        lambda: sum(1 for c in sandbox.calls() if c.fault == "outage") >= 5,
        30,
        "the worker to meet the outage",
    )
    assert sandbox.tickets_with_notes() == []
    sandbox.faults.clear()
    connector.drain(timeout=120)
    audit_lifecycles(sandbox, 20)
    audit_write_order(sandbox)


@pytest.mark.autotask_words  # one attempt, then Autotask's words in the dead letter
def test_permanent_rejection_is_a_visible_dead_letter_and_replay_delivers_once_fixed(
    connector: Connector, sandbox: Sandbox
) -> None:
    with connector.services.transaction() as session:
        session.add(TenantMapping(integration_id=1, tenant="broken", company_id=999))
    connector.start_worker()
    accepted = connector.post(alert(1, "active", tenant="broken")).json()["accepted"][0]
    wait_until(lambda: connector.deliveries_by_state() == {"dead": 1}, 30, "a dead letter")
    (dead,) = connector.api("deliveries?state=dead").json()["deliveries"]
    assert dead["attempts"] == 1  # permanent: no retries
    # Autotask's reference error (autotask-api.md §14), read as permanent by the REST client.
    assert (
        "Reference value on field: companyID of type: Account does not exist or is invalid."
        in dead["last_error"]
    )
    assert dead["last_response"]["status"] == 500
    detail = connector.api(f"alerts/{accepted['alert_id']}").json()
    assert detail["deliveries"][0]["state"] == "dead"
    assert sandbox.tickets_with_notes() == []
    with connector.services.transaction() as session:
        session.execute(
            update(TenantMapping)
            .where(TenantMapping.tenant == "broken")
            .values(company_id=29683416)
        )
    assert connector.api(f"deliveries/{dead['id']}/replay", method="POST").status_code == 200
    connector.drain(timeout=30)
    (ticket,) = sandbox.tickets_with_notes()
    assert ticket["companyID"] == 29683416
    assert connector.api(f"deliveries/{dead['id']}/replay", method="POST").status_code == 409


#: Enough alerts that three workers interleave on them (each alert's three events are claimed in
#: turn while the others' are in flight: more alerts than the three workers' lanes, 3 ×
#: WORKER_THREADS), few enough to drain quickly on a loaded CI.
LIFECYCLES = 60


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_workers_on_postgresql_share_60_lifecycles_in_order(
    connector: Connector, sandbox: Sandbox
) -> None:
    for _ in range(3):
        connector.start_worker()
    fire_acknowledge_clear(connector, LIFECYCLES)
    connector.drain(timeout=240)  # it drains in seconds when idle: room for a loaded machine
    assert connector.deliveries_by_state() == {"done": 3 * LIFECYCLES}
    audit_lifecycles(sandbox, LIFECYCLES)
    audit_write_order(sandbox)
