"""Autotask's API limits in the sandbox: hourly threshold, usage-based latency, thread limiting.

Reference: ../shared/reference/autotask-api.md §8.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from adapters.sandbox import (
    ApiUser,
    LimitSettings,
    Sandbox,
    SandboxConfig,
    SandboxServer,
    create_sandbox_app,
)
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.limits import ApiLimits
from tests.conftest import RestClient

#: The real wording (n8n-nodes-autotask PR #107; autotask-api.md §14).
THREAD_ERROR = "API thread threshold of 3 threads has been exceeded"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def serve(api_user: ApiUser) -> Iterator[Callable[[Sandbox], RestClient]]:
    """Serve any sandbox over HTTP and return a REST client for it; stopped at teardown."""
    servers: list[SandboxServer] = []

    def start(sandbox: Sandbox) -> RestClient:
        server = SandboxServer(sandbox).start()
        servers.append(server)
        return RestClient(server, api_user)

    yield start
    for server in servers:
        server.stop()


def zone_url(rest: RestClient) -> str:
    return f"{rest.base}zoneInformation"


def control_url(rest: RestClient, name: str) -> str:
    """The sandbox's own /_sandbox/<name> endpoint beside the REST API."""
    return f"{rest.base.removesuffix('atservicesrest/v1.0/')}_sandbox/{name}"


def assert_threshold_error(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    errors = response.json()["errors"]
    assert errors and "threshold" in errors[0]


# -- hourly threshold ------------------------------------------------------------------------


def test_the_call_past_the_hourly_threshold_is_refused(
    serve: Callable[[Sandbox], RestClient], api_user: ApiUser
) -> None:
    settings = LimitSettings(hourly_threshold=5, latency_tiers=[])
    rest = serve(Sandbox(SandboxConfig(user=api_user, limits=settings)))
    for n in range(5):
        # Zone lookups in between are not counted.
        zone = requests.get(zone_url(rest), params={"user": api_user.username}, timeout=10)
        assert zone.status_code == 200
        assert rest.get("Companies/0").status_code == 200, f"call {n + 1}"
    assert_threshold_error(rest.get("Companies/0"))
    assert_threshold_error(rest.get("ThresholdInformation"))
    # Still refused and still not counted: the window holds the five accepted calls.
    assert requests.get(zone_url(rest), params={"user": api_user.username}, timeout=10).ok


def test_failed_authentication_is_not_counted(api_user: ApiUser) -> None:
    settings = LimitSettings(hourly_threshold=5, latency_tiers=[])
    sandbox = Sandbox(SandboxConfig(user=api_user, limits=settings))
    client = _client(sandbox)
    for _ in range(3):
        assert client.get("/atservicesrest/v1.0/Companies/0").status_code == 500
    assert sandbox.limits.usage() == 0


def _client(sandbox: Sandbox) -> FlaskClient:
    return create_sandbox_app(sandbox).test_client()


def _headers(user: ApiUser) -> dict[str, str]:
    return {
        "UserName": user.username,
        "Secret": user.secret,
        "ApiIntegrationCode": user.integration_code,
    }


@pytest.mark.parametrize("minutes", [60, 1])
def test_the_window_rolls(api_user: ApiUser, minutes: int) -> None:
    clock = FakeClock()
    settings = LimitSettings(hourly_threshold=5, timeframe_minutes=minutes, latency_tiers=[])
    sandbox = Sandbox(SandboxConfig(user=api_user, limits=settings), clock=clock)
    client = _client(sandbox)
    headers = _headers(api_user)

    def status() -> int:
        return int(client.get("/atservicesrest/v1.0/Companies/0", headers=headers).status_code)

    start = clock.now
    for n in range(5):
        clock.now = start + n  # one call a second
        assert status() == 200
    assert status() == 429
    clock.now = start + minutes * 60 - 0.5
    assert status() == 429
    threshold = client.get("/atservicesrest/v1.0/ThresholdInformation", headers=headers)
    assert threshold.status_code == 429
    # The first call leaves the window: exactly one more is allowed, then the second leaves.
    clock.now = start + minutes * 60 + 0.5
    assert status() == 200
    assert status() == 429
    clock.now = start + minutes * 60 + 1.5
    assert status() == 200
    assert sandbox.limits.usage() == 5
    # Long after, the whole window is free again.
    clock.now = start + 10 * minutes * 60
    assert sandbox.limits.usage() == 0
    info = client.get("/atservicesrest/v1.0/ThresholdInformation", headers=headers).get_json()
    assert info == {
        "externalRequestThreshold": 5,
        "requestThresholdTimeframe": minutes,
        "currentTimeframeRequestCount": 1,
    }


# -- usage-based latency -------------------------------------------------------------------------


def test_latency_tiers_add_latency_by_usage(
    serve: Callable[[Sandbox], RestClient], api_user: ApiUser
) -> None:
    sleeps: list[float] = []
    settings = LimitSettings(hourly_threshold=10, latency_tiers=[(0.5, 0.01), (0.75, 0.02)])
    sandbox = Sandbox(SandboxConfig(user=api_user, limits=settings), sleep=sleeps.append)
    rest = serve(sandbox)
    for _ in range(10):
        assert rest.get("Companies/0").status_code == 200
    calls = requests.get(control_url(rest, "calls"), timeout=10)
    added = [call["added_latency_ms"] for call in calls.json()]
    # Calls 5-7 use 50-70 % of the threshold, calls 8-10 use 80-100 %.
    assert added == [0, 0, 0, 0, 10, 10, 10, 20, 20, 20]
    assert sleeps == [0.01] * 3 + [0.02] * 3
    limits = requests.get(control_url(rest, "limits"), timeout=10)
    assert limits.json() == {
        "hourly_threshold": 10,
        "timeframe_minutes": 60,
        "latency_tiers": [[0.5, 0.01], [0.75, 0.02]],
        "thread_limit": 3,
        "latency_seconds": 0.0,
        "current_usage": 10,
    }


def test_default_latency_tiers_are_half_and_one_second() -> None:
    limits = ApiLimits(LimitSettings(hourly_threshold=4))
    assert [limits.count_request() for _ in range(4)] == [0.0, 0.5, 1.0, 1.0]


# -- thread limiting -------------------------------------------------------------------------


class Gate:
    """The sandbox's sleep, holding every delayed request until the test opens the gate.

    With a latency fault set, each request that gets a thread waits here, so a burst is
    limited the same way however slowly the machine starts its threads.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self.held = 0

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.held += 1
        self.opened.wait(timeout=10)


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.opened.set()


@pytest.fixture
def sandbox(api_user: ApiUser, limit_settings: LimitSettings, gate: Gate) -> Sandbox:
    """The conftest sandbox, sleeping through the gate."""
    return Sandbox(SandboxConfig(user=api_user, limits=limit_settings), sleep=gate.sleep)


def _burst(
    gate: Gate, calls: list[Callable[[], requests.Response]], held: int
) -> list[requests.Response]:
    """Send every call at once; open the gate once `held` are waiting and the rest answered."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        deadline = time.monotonic() + 10
        while gate.held < held or sum(f.done() for f in futures) < len(calls) - held:
            assert time.monotonic() < deadline, (gate.held, [f.done() for f in futures])
            time.sleep(0.005)
        assert gate.held == held
        gate.opened.set()
        return [future.result() for future in futures]


def _get(url: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    return lambda: requests.get(url, headers=headers, params=params or None, timeout=10)


def _hold_requests(rest: RestClient) -> None:
    """Give every request a latency fault: it then sleeps, and so waits at the gate."""
    plan = {"latency_ms": 400}
    response = requests.post(control_url(rest, "faults"), json=plan, timeout=10)
    assert response.status_code == 200


def test_a_fourth_concurrent_call_to_one_endpoint_is_refused(
    rest: RestClient, api_user: ApiUser, sandbox: Sandbox, gate: Gate
) -> None:
    _hold_requests(rest)
    headers = _headers(api_user)
    responses = _burst(gate, [_get(f"{rest.base}Companies/0", headers) for _ in range(6)], 3)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 429, 429, 429]
    for response in responses:
        if response.status_code == 429:
            assert response.json() == {"errors": [THREAD_ERROR]}
    concurrent = [call.concurrent for call in sandbox.calls() if call.status == 200]
    assert sorted(concurrent) == [1, 2, 3]
    assert all(call.added_latency_ms == 400 for call in sandbox.calls() if call.status == 200)
    # Slots are given back: the endpoint answers again.
    assert requests.get(f"{rest.base}Companies/0", headers=headers, timeout=10).ok


def test_other_endpoints_have_their_own_threads(
    rest: RestClient, api_user: ApiUser, sandbox: Sandbox, gate: Gate
) -> None:
    headers = _headers(api_user)
    ticket_id = rest.create_ticket()
    _hold_requests(rest)
    calls = [_get(f"{rest.base}Companies/0", headers) for _ in range(3)]
    calls += [_get(f"{rest.base}Tickets/{ticket_id}", headers) for _ in range(3)]
    responses = _burst(gate, calls, 6)
    assert [r.status_code for r in responses] == [200] * 6
    by_endpoint: dict[str, int] = {}
    for call in sandbox.calls():
        by_endpoint[call.endpoint] = max(by_endpoint.get(call.endpoint, 0), call.concurrent)
    assert by_endpoint == {"Companies": 3, "Tickets": 3}


def test_zone_information_is_not_thread_limited(
    rest: RestClient, api_user: ApiUser, gate: Gate
) -> None:
    _hold_requests(rest)
    url = zone_url(rest)
    responses = _burst(gate, [_get(url, user=api_user.username) for _ in range(6)], 6)
    assert [r.status_code for r in responses] == [200] * 6


def test_concurrency_never_exceeds_three_in_the_call_log(
    rest: RestClient, api_user: ApiUser, sandbox_server: SandboxServer, gate: Gate
) -> None:
    _hold_requests(rest)
    headers = _headers(api_user)
    calls = [_get(f"{rest.base}ThresholdInformation", headers) for _ in range(8)]
    responses = _burst(gate, calls, 3)
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 5
    log = requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json()
    concurrent = [call["concurrent"] for call in log if call["endpoint"] == "ThresholdInformation"]
    assert max(concurrent) == 3
    assert [c["status"] for c in log].count(429) == 5


def test_thread_slots_are_per_tracking_identifier_and_endpoint() -> None:
    limits = ApiLimits(LimitSettings())
    with limits.thread_slot("A", "Tickets"), limits.thread_slot("A", "Tickets"):
        with limits.thread_slot("A", "tickets") as third:
            assert third == 3
            with pytest.raises(SandboxError) as refused:
                with limits.thread_slot("A", "Tickets"):
                    pass
            assert refused.value.status == 429
            assert refused.value.messages == [THREAD_ERROR]
            with limits.thread_slot("B", "Tickets") as other_identifier:
                assert other_identifier == 1
            with limits.thread_slot("A", "Companies") as other_endpoint:
                assert other_endpoint == 1
    with limits.thread_slot("A", "Tickets") as again:
        assert again == 1


def test_reset_keeps_calls_in_flight_counted() -> None:
    limits = ApiLimits(LimitSettings(thread_limit=1))
    with limits.thread_slot("A", "Tickets"):
        limits.reset()
        with pytest.raises(SandboxError):
            with limits.thread_slot("A", "Tickets"):
                pass
    # The slot held across the reset is given back without error.
    with limits.thread_slot("A", "Tickets") as again:
        assert again == 1


# -- base latency and the concurrency it shows ---------------------------------------------------


def test_a_base_latency_is_added_to_every_call_zone_lookups_too(
    serve: Callable[[Sandbox], RestClient], api_user: ApiUser
) -> None:
    sleeps: list[float] = []
    settings = LimitSettings(latency_tiers=[], latency_seconds=0.25)
    sandbox = Sandbox(SandboxConfig(user=api_user, limits=settings), sleep=sleeps.append)
    rest = serve(sandbox)
    assert rest.get("Companies/0").status_code == 200
    assert requests.get(zone_url(rest), params={"user": api_user.username}, timeout=10).ok
    assert sleeps == [0.25, 0.25]
    assert [call.added_latency_ms for call in sandbox.calls()] == [250, 250]
    limits = requests.get(control_url(rest, "limits"), timeout=10).json()
    assert limits["latency_seconds"] == 0.25


def test_calls_sleeping_their_latency_are_served_side_by_side_up_to_the_thread_limit(
    rest: RestClient, api_user: ApiUser, sandbox: Sandbox, gate: Gate
) -> None:
    """Three calls to one endpoint sleep at once (the server is threaded); the log and the
    concurrency report show them overlapping, and the fourth refused."""
    sandbox.limits.settings.latency_seconds = 0.1
    headers = _headers(api_user)
    responses = _burst(gate, [_get(f"{rest.base}Companies/0", headers) for _ in range(4)], 3)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 429]
    log = requests.get(control_url(rest, "calls"), timeout=10).json()
    assert all(call["start"] <= call["end"] for call in log)
    served = [call for call in log if call["status"] == 200]
    assert max(call["start"] for call in served) < min(call["end"] for call in served)
    report = requests.get(control_url(rest, "concurrency"), timeout=10).json()
    assert (report["calls"], report["refused_429"], report["peak"]) == (4, 1, 3)
    companies = report["by_endpoint"]["Companies"]
    assert (companies["calls"], companies["peak"]) == (4, 3)
    assert 0 < report["average"] <= 3


def test_the_concurrency_report_counts_overlaps_not_calls_that_touch() -> None:
    from adapters.sandbox.concurrency import concurrency_report, peak
    from adapters.sandbox.core import Call

    # Sandbox calls' start and end times; one refused with 429 held no thread.
    def call(endpoint: str, start: float, end: float, status: int = 200) -> Call:
        return Call(
            "rest",
            "GET",
            "/",
            endpoint,
            "item.get",
            start,
            "",
            status,
            duration_ms=(end - start) * 1000,
        )

    assert peak([(0, 1), (1, 2), (2, 3)]) == 1  # back to back: one at a time
    calls = [
        call("Tickets", 0, 2),
        call("Tickets", 0, 1),
        call("TicketNotes", 1, 2),
        call("Tickets", 0.5, 0.6, 429),  # refused: it held no thread, it is not counted
    ]
    report = concurrency_report(calls)
    assert (report["calls"], report["peak"], report["refused_429"]) == (4, 2, 1)
    assert (report["span_seconds"], report["busy_seconds"], report["average"]) == (2, 4, 2)
    assert report["by_endpoint"]["Tickets"]["peak"] == 2
    assert report["by_endpoint"]["TicketNotes"]["average"] == 0.5
    assert concurrency_report([])["peak"] == 0
