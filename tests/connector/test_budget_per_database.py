"""One hourly budget per Autotask database, and the database's count as Autotask reports it.

The governor's tests run against the real database (SQLite and PostgreSQL) with a settable clock;
the zone lookups and the threshold polls against the real sandbox over HTTP, in both flavours.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import Sandbox
from adapters.sandbox.limits import LimitSettings
from connector.integrations.settings import load_settings
from connector.persistence.models import ApiCall, DatabaseUsage, Delivery, Integration, utcnow
from connector.pipeline.dispatch import CallLog
from connector.pipeline.governor import Governor, Limits, Permit, Throttled
from connector.pipeline.thresholds import poll_thresholds
from connector.services import Services
from connector.wiring import make_worker
from tests.conftest import API_TOKEN, HOOK_TOKEN
from tests.connector.test_governor import add_calls
from tests.connector.test_worker import Clock

#: The sandbox's database id (SandboxConfig.ci), as its zone lookups answer it.
SANDBOX_DATABASE = "29683000"

LIMITS = Limits(
    hourly_ceiling=10, reserve_fraction=0.2, breaker_failures=5, breaker_cooldown=30, slot_wait=0
)
#: A ceiling far away, so that only the threshold's safety share holds calls back.
THRESHOLD_LIMITS = Limits(
    hourly_ceiling=100_000,
    reserve_fraction=0.2,
    slot_wait=0,
    threshold_poll=300,
    threshold_share=0.9,
    report_max_age=900,
)


@pytest.fixture
def limit_settings() -> LimitSettings:
    """Autotask's limits with a small hourly threshold, so other tools can come near it."""
    return LimitSettings(latency_tiers=[], hourly_threshold=100)


@pytest.fixture
def services(connector_app: Flask) -> Services:
    found: Services = connector_app.extensions["connector"]
    return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


def add_integration(services: Services, name: str, database_id: str | None) -> int:
    """Another integration (never called: its credentials are placeholders) in `database_id`."""
    with services.transaction() as session:
        integration = Integration(
            name=name,
            api_flavour="rest",
            zone_lookup_url="https://webservices.autotask.net/atservicesrest/",
            username=f"{name}@example.test",
            secret_encrypted="-",
            integration_code_encrypted="-",
            database_id=database_id,
        )
        session.add(integration)
        session.flush()
        return int(integration.id)


def set_database(services: Services, integration_id: int, database_id: str | None) -> None:
    with services.transaction() as session:
        integration = session.get(Integration, integration_id)
        assert integration is not None
        integration.database_id = database_id


def default_id(services: Services) -> int:
    with services.transaction() as session:
        return int(
            session.scalars(select(Integration.id).where(Integration.name == "default")).one()
        )


def report(services: Services, database_id: str, count: int, threshold: int, at: datetime) -> None:
    """What Autotask last reported of the database's hourly count."""
    with services.transaction() as session:
        session.merge(
            DatabaseUsage(
                database_id=database_id,
                reported_count=count,
                threshold=threshold,
                timeframe_minutes=60,
                reported_at=at,
            )
        )


def admitted(governor: Governor, integration_id: int, *, creates: bool = False) -> bool:
    """Whether one call of the integration is admitted now (its slot given back at once)."""
    try:
        permit = governor.admit(integration_id, "Tickets", "w1", creates=creates)
    except Throttled:
        return False
    governor.release(permit, None)
    return True


# -- one ceiling per database ----------------------------------------------------------------------


def test_two_integrations_of_one_database_share_the_ceiling(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    governor = Governor(services, LIMITS, clock=clock)
    add_calls(services, first, *([1.0] * 6), now=clock.now)
    add_calls(services, second, *([2.0] * 3), now=clock.now)

    assert admitted(governor, second)  # 9 of 10 used together: one more goes
    add_calls(services, second, 0.5, now=clock.now)
    with pytest.raises(Throttled, match=r"database 513558 \(shared by 2 integrations\)") as held:
        governor.admit(first, "Tickets", "w1", creates=False)
    assert "10 of 10" in str(held.value)
    assert held.value.consumes_attempt is False
    assert not admitted(governor, second)
    # The budget frees up when the oldest call of either leaves the rolling hour.
    clock.advance(minutes=59, seconds=1)
    assert admitted(governor, first)


def test_creates_keep_the_reserve_of_the_shared_budget(services: Services, clock: Clock) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    governor = Governor(services, LIMITS, clock=clock)
    add_calls(services, first, *([1.0] * 4), now=clock.now)
    add_calls(services, second, *([1.0] * 4), now=clock.now)

    assert not admitted(governor, first, creates=True)  # 8 = 10 × (1 − 0.2): creates stop
    assert admitted(governor, second, creates=False)  # acknowledgements and closes go on


def test_calls_in_flight_of_another_integration_of_the_database_count(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    governor = Governor(services, LIMITS, clock=clock)
    add_calls(services, first, *([1.0] * 7), now=clock.now)
    held = [governor.admit(second, "TicketNotes", f"w{n}", creates=False) for n in range(3)]
    with pytest.raises(Throttled, match="10 of 10"):
        governor.admit(first, "Tickets", "w9", creates=False)
    governor.release(held[0], None)  # its record is not stored: one in flight less
    assert admitted(governor, first)


def test_integrations_of_different_databases_have_a_ceiling_each(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "30049")
    governor = Governor(services, LIMITS, clock=clock)
    add_calls(services, second, *([1.0] * 10), now=clock.now)
    add_calls(services, first, *([1.0] * 9), now=clock.now)

    assert not admitted(governor, second)
    assert admitted(governor, first)


def test_an_integration_whose_database_is_not_known_counts_alone(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, None)
    second = add_integration(services, "second", "513558")
    third = add_integration(services, "third", "513558")
    governor = Governor(services, LIMITS, clock=clock)
    add_calls(services, first, *([1.0] * 9), now=clock.now)
    add_calls(services, second, *([1.0] * 5), now=clock.now)

    assert admitted(governor, first)  # its own 9 of 10; the database's calls are not its
    assert admitted(governor, third)  # 5 of 10: the unknown one's 9 are not the database's
    add_calls(services, first, 0.5, now=clock.now)
    with pytest.raises(Throttled, match="10 of 10") as held:
        governor.admit(first, "Tickets", "w1", creates=False)
    assert "database" not in str(held.value)


def test_concurrent_admissions_of_one_database_never_pass_its_ceiling(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    add_calls(services, first, *([1.0] * 5), now=clock.now)
    permits: list[Permit] = []
    refused: list[Throttled] = []
    start = threading.Barrier(8)

    def admit(n: int) -> None:
        governor = Governor(services, LIMITS, clock=clock)
        start.wait(timeout=30)
        integration = (first, second)[n % 2]
        endpoint = ("Tickets", "TicketNotes")[n // 2 % 2]  # never short of slots
        try:
            permits.append(governor.admit(integration, endpoint, f"t{n}", creates=False))
        except Throttled as e:
            refused.append(e)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [t for t in threads if t.is_alive()], "an admission never returned"
    assert (len(permits), len(refused)) == (5, 3)  # 5 stored + 5 in flight = the ceiling
    assert all("hourly API budget" in str(e) for e in refused)


# -- the database's count as Autotask reports it ---------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "creates", "goes"),
    [
        (88, False, True),  # 88 + 1 of ours since + this one = 90: 0.9 × 100
        (89, False, False),
        (70, True, True),  # creates stop at 0.9 × 100 × (1 − 0.2) = 72
        (71, True, False),
    ],
)
def test_a_reported_count_near_the_threshold_holds_calls_back(
    services: Services, clock: Clock, reported: int, creates: bool, goes: bool
) -> None:
    integration = default_id(services)
    set_database(services, integration, "513558")
    report(services, "513558", reported, 100, at=clock.now - timedelta(minutes=2))
    add_calls(services, integration, 5.0, 1.0, now=clock.now)  # one before the report, one since
    governor = Governor(services, THRESHOLD_LIMITS, clock=clock)
    if goes:
        assert admitted(governor, integration, creates=creates)
        return
    with pytest.raises(Throttled) as held:
        governor.admit(integration, "Tickets", "w1", creates=creates)
    message = str(held.value)
    assert message.startswith("throttled: Autotask database 513558 is near its hourly threshold")
    assert f"Autotask reported {reported} at" in message
    assert "made 1 since" in message
    assert held.value.consumes_attempt is False
    # Held until the next report is due (3 minutes on), not for a second.
    assert held.value.retry_after == pytest.approx(180, abs=1)


def test_calls_of_every_integration_of_the_database_since_the_report_count(
    services: Services, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    report(services, "513558", 80, 100, at=clock.now - timedelta(minutes=2))
    add_calls(services, second, *([1.0] * 9), now=clock.now)
    governor = Governor(services, THRESHOLD_LIMITS, clock=clock)
    assert admitted(governor, first)  # 80 + 9 + 1 = 90
    add_calls(services, first, 0.5, now=clock.now)
    assert not admitted(governor, second)


def test_an_old_report_is_not_trusted_forever(services: Services, clock: Clock) -> None:
    integration = default_id(services)
    set_database(services, integration, "513558")
    governor = Governor(services, THRESHOLD_LIMITS, clock=clock)
    report(services, "513558", 99, 100, at=clock.now - timedelta(seconds=899))
    assert not admitted(governor, integration)
    clock.advance(seconds=2)  # the report is now older than report_max_age (900 s)
    assert admitted(governor, integration)


def test_a_database_without_a_report_is_held_back_only_by_the_ceiling(
    services: Services, clock: Clock
) -> None:
    integration = default_id(services)
    set_database(services, integration, "513558")
    governor = Governor(services, THRESHOLD_LIMITS, clock=clock)
    add_calls(services, integration, *([1.0] * 95), now=clock.now)
    assert admitted(governor, integration)


# -- the zone lookup names the database (the real sandbox, both flavours) --------------------------


def database_of(services: Services, integration_id: int) -> str | None:
    with services.transaction() as session:
        return session.scalar(
            select(Integration.database_id).where(Integration.id == integration_id)
        )


def look_the_zone_up(services: Services, integration_id: int) -> str:
    """Build the integration's target as the worker does and ask for its zone."""
    with services.transaction() as session:
        integration = session.get(Integration, integration_id)
        assert integration is not None
        settings = load_settings(integration.settings)
    return services.targets()(integration, settings, CallLog()).endpoint_url()


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_the_zone_lookup_keeps_the_database_on_the_integration(
    services: Services, sandbox: Sandbox, api_flavour: str
) -> None:
    integration = default_id(services)
    assert database_of(services, integration) is None  # no lookup yet
    look_the_zone_up(services, integration)
    assert database_of(services, integration) == str(sandbox.config.ci) == SANDBOX_DATABASE

    sandbox.config.ci = 30049  # the database moved
    with services.transaction() as session:
        saved = session.get(Integration, integration)
        assert saved is not None
        saved.updated_at = utcnow()  # saved since: the kept zone is looked up again
    look_the_zone_up(services, integration)
    assert database_of(services, integration) == "30049"


# -- polling the threshold (the real sandbox, both flavours) ---------------------------------------


def other_tools_call(sandbox: Sandbox, calls: int) -> None:
    """Calls the MSP's other tools make to the same Autotask database."""
    for _ in range(calls):
        sandbox.limits.count_request()


def usage_calls(services: Services) -> list[ApiCall]:
    with services.transaction() as session:
        return list(
            session.scalars(
                select(ApiCall).where(
                    # REST names the entity so; SOAP logs the operation as it
                    ApiCall.entity.in_(["ThresholdInformation", "getThresholdAndUsageInfo"])
                )
            )
        )


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_a_poll_stores_what_autotask_counts_for_the_database(
    services: Services, sandbox: Sandbox, api_flavour: str
) -> None:
    integration = default_id(services)
    look_the_zone_up(services, integration)
    other_tools_call(sandbox, 40)

    polled = poll_thresholds(services, utcnow(), lambda: False)

    usage = polled.polled[SANDBOX_DATABASE]
    assert (usage.threshold, usage.timeframe_minutes) == (100, 60)
    assert 40 <= usage.count <= 42  # the other tools' 40, and the poll itself
    with services.transaction() as session:
        row = session.get(DatabaseUsage, SANDBOX_DATABASE)
        assert row is not None
        assert (row.reported_count, row.threshold) == (usage.count, 100)
        assert row.reported_at is not None
    assert len(usage_calls(services)) == 1  # counted like any call

    again = poll_thresholds(services, utcnow(), lambda: False)
    assert again.not_due == [SANDBOX_DATABASE] and not again.polled
    later = poll_thresholds(services, utcnow() + timedelta(seconds=300), lambda: False)
    assert SANDBOX_DATABASE in later.polled


def test_a_poll_asks_nothing_of_an_integration_whose_database_is_not_known(
    services: Services, sandbox: Sandbox
) -> None:
    calls_before = len(sandbox.calls())
    polled = poll_thresholds(services, utcnow(), lambda: False)
    assert (polled.polled, polled.failed, polled.not_due) == ({}, {}, [])
    assert len(sandbox.calls()) == calls_before


def test_a_poll_asks_each_database_once_whatever_its_integrations(
    services: Services, sandbox: Sandbox
) -> None:
    integration = default_id(services)
    look_the_zone_up(services, integration)
    add_integration(services, "same database", SANDBOX_DATABASE)  # asked through the lowest id
    polled = poll_thresholds(services, utcnow(), lambda: False)
    assert list(polled.polled) == [SANDBOX_DATABASE]
    assert len(usage_calls(services)) == 1


def test_a_poll_stops_when_the_process_stops(services: Services, sandbox: Sandbox) -> None:
    look_the_zone_up(services, default_id(services))
    polled = poll_thresholds(services, utcnow(), lambda: True)
    assert polled.polled == {} and usage_calls(services) == []


def test_a_poll_held_back_by_the_governor_is_told_and_spends_no_call(
    services: Services, sandbox: Sandbox
) -> None:
    integration = default_id(services)
    look_the_zone_up(services, integration)
    now = utcnow()
    governor = Governor(services, Limits(hourly_ceiling=3, slot_wait=0))
    add_calls(services, integration, 1.0, 1.0, 1.0, now=now)
    calls_before = len(sandbox.calls())
    polled = poll_thresholds(services, now, lambda: False, governor=governor)
    assert "hourly API budget" in polled.failed[SANDBOX_DATABASE]
    assert len(sandbox.calls()) == calls_before


@pytest.fixture
def app_client(connector_app: Flask) -> Iterator[FlaskClient]:
    yield connector_app.test_client()


def post_alert(client: FlaskClient, fingerprint: str) -> None:
    response = client.post(
        "/hooks/generic",
        json={"id": fingerprint, "status": "active", "severity": "error", "title": "Disk full"},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert response.status_code == 202, response.get_json()


def budget_shown(client: FlaskClient, integration_id: int) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/integrations/{integration_id}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 200, response.get_json()
    budget: dict[str, Any] = response.get_json()["autotask_budget"]
    return budget


@pytest.mark.parametrize("api_flavour", ["rest", "soap"])
def test_other_tools_near_the_threshold_hold_the_worker_back_before_autotask_does(
    services: Services, sandbox: Sandbox, app_client: FlaskClient, api_flavour: str
) -> None:
    integration = default_id(services)
    worker = make_worker(services)
    post_alert(app_client, "first")
    assert worker.run_once()  # the first ticket; its zone lookup names the database
    assert database_of(services, integration) == SANDBOX_DATABASE
    other_tools_call(sandbox, 92)
    poll_thresholds(services, utcnow(), lambda: False)

    post_alert(app_client, "second")
    worker.run_once()
    held = [d for d in deliveries(services) if d.state == "pending"]
    assert len(held) == 1 and held[0].attempts == 0
    assert (held[0].last_error or "").startswith(
        f"throttled: Autotask database {SANDBOX_DATABASE} is near its hourly threshold"
    )
    assert len(sandbox.tickets_with_notes()) == 1  # Autotask never had to refuse anything

    shown = budget_shown(app_client, integration)
    assert shown["database_id"] == SANDBOX_DATABASE
    assert shown["integrations"] == [integration]
    reported = shown["autotask_reported"]
    assert reported["threshold"] == 100 and reported["count"] >= 92
    assert reported["trusted"] is True and reported["stop_at"] == 90


def deliveries(services: Services) -> list[Delivery]:
    with services.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_the_report_is_shown_with_the_calls_counted(
    services: Services, app_client: FlaskClient, clock: Clock
) -> None:
    first = default_id(services)
    set_database(services, first, "513558")
    second = add_integration(services, "second", "513558")
    add_calls(services, first, 1.0, 2.0, now=utcnow())
    add_calls(services, second, 1.0, now=utcnow())
    report(services, "513558", 500, 10_000, at=utcnow() - timedelta(minutes=3))
    shown = budget_shown(app_client, second)
    assert shown == {
        "database_id": "513558",
        "integrations": [first, second],
        "calls_last_hour": 3,
        "ceiling": 10_000,
        "autotask_reported": {
            "count": 500,
            "threshold": 10_000,
            "timeframe_minutes": 60,
            "at": shown["autotask_reported"]["at"],
            "calls_since": 3,
            "trusted": True,
            "stop_at": 9000,
        },
    }
