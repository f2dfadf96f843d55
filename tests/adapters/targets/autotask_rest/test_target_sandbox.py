"""AutotaskRestTarget over real HTTP against the running sandbox (limits, faults and all)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from adapters.targets.autotask_common import TRUNCATION_MARKER
from adapters.targets.autotask_rest import (
    AutotaskRestClient,
    AutotaskRestTarget,
    AutotaskUnavailable,
)
from adapters.targets.sandbox import ApiUser, LimitSettings, Sandbox, SandboxServer
from connector.domain import ApiCallRecord, TicketDraft, TicketRef
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)

CONTOSO = 29683414  # a seeded company (adapters/targets/sandbox/seed.py)


def draft(marker: str = "alert-1f3a", **fields: Any) -> TicketDraft:
    values: dict[str, Any] = {
        "company_id": CONTOSO,
        "title": "Disk full on srv01",
        "description": "C: has 1 % free.",
        "status": 1,
        "priority": 2,
        "marker": marker,
    }
    values.update(fields)
    return TicketDraft(**values)


MakeClient = Callable[..., AutotaskRestClient]


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def make_client(
    sandbox_server: SandboxServer, api_user: ApiUser, records: list[ApiCallRecord]
) -> MakeClient:
    """Build a client for the sandbox; keyword arguments override the API user's values."""

    def make(**overrides: Any) -> AutotaskRestClient:
        options: dict[str, Any] = {
            "username": api_user.username,
            "secret": api_user.secret,
            "integration_code": api_user.integration_code,
            "allowed_zone_hosts": ["127.0.0.1"],
            "recorder": records.append,
        }
        options.update(overrides)
        return AutotaskRestClient(f"{sandbox_server.url}atservicesrest/", **options)

    return make


@pytest.fixture
def target(make_client: MakeClient) -> AutotaskRestTarget:
    return AutotaskRestTarget(make_client())


def set_faults(server: SandboxServer, plan: dict[str, Any]) -> None:
    response = requests.post(f"{server.url}_sandbox/faults", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def ticket_in_sandbox(sandbox: Sandbox, ticket_id: int) -> dict[str, Any]:
    found = [t for t in sandbox.tickets_with_notes() if t["id"] == ticket_id]
    assert len(found) == 1, found
    return found[0]


# -- the operations ----------------------------------------------------------------------------


def test_create_ticket_sends_every_mapped_field_and_the_marker(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(
        draft(
            queue_id=29682833,
            due_at=datetime(2030, 3, 21, 9, 30, tzinfo=UTC),
            ticket_category=4,
            ticket_type=5,
            issue_type=2,
            sub_issue_type=201,
            source=8,
        )
    )
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert ref == TicketRef(ref.ticket_id, ticket["ticketNumber"], 1)
    assert ref.ticket_number is not None
    expected = {
        "companyID": CONTOSO,
        "title": "Disk full on srv01",
        "description": "C: has 1 % free.",
        "status": 1,
        "priority": 2,
        "queueID": 29682833,
        "dueDateTime": "2030-03-21T09:30:00.000Z",
        "ticketCategory": 4,
        "ticketType": 5,
        "issueType": 2,
        "subIssueType": 201,
        "source": 8,
        "externalID": "alert-1f3a",
    }
    assert {key: ticket[key] for key in expected} == expected


def test_create_ticket_truncates_title_and_description_visibly(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    # Title ≤255 and description ≤8000 (FIELDINFO, autotask-api.md §3).
    ref = target.create_ticket(draft(title="T" * 400, description="D" * 9000))
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert len(ticket["title"]) == 255
    assert ticket["title"].endswith(TRUNCATION_MARKER)
    assert len(ticket["description"]) == 8000
    assert ticket["description"].endswith(TRUNCATION_MARKER)


def test_marker_longer_than_external_id_is_refused_before_any_call(
    target: AutotaskRestTarget, records: list[ApiCallRecord]
) -> None:
    with pytest.raises(TargetRejected, match="externalID"):
        target.create_ticket(draft(marker="m" * 51))
    assert records == []


def test_find_ticket_by_marker_finds_the_created_ticket(target: AutotaskRestTarget) -> None:
    created = target.create_ticket(draft(marker="alert-find-me"))
    target.create_ticket(draft(marker="alert-other"))
    assert target.find_ticket_by_marker("alert-find-me") == created
    assert target.find_ticket_by_marker("alert-unknown") is None


def test_find_ticket_by_marker_prefers_the_lowest_id(
    target: AutotaskRestTarget, make_client: MakeClient
) -> None:
    client = make_client()
    first = client.create_ticket(
        {"companyID": CONTOSO, "title": "a", "status": 1, "priority": 2, "externalID": "dup"}
    )
    client.create_ticket(
        {"companyID": CONTOSO, "title": "b", "status": 1, "priority": 2, "externalID": "dup"}
    )
    found = target.find_ticket_by_marker("dup")
    assert found is not None
    assert found.ticket_id == first


def test_add_note_creates_a_note_on_the_ticket(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(draft())
    note_id = target.add_note(ref.ticket_id, "Acknowledged", "Ack by on-call.")
    notes = ticket_in_sandbox(sandbox, ref.ticket_id)["notes"]
    assert [(n["id"], n["title"], n["description"]) for n in notes] == [
        (note_id, "Acknowledged", "Ack by on-call.")
    ]
    assert (notes[0]["noteType"], notes[0]["publish"]) == (1, 1)


def test_add_note_truncates_a_long_text_and_title(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    # Note description ≤32000, title ≤250 (FIELDINFO TicketNote, autotask-api.md §5).
    ref = target.create_ticket(draft())
    target.add_note(ref.ticket_id, "t" * 300, "x" * 33000)
    note = ticket_in_sandbox(sandbox, ref.ticket_id)["notes"][0]
    assert len(note["title"]) == 250
    assert len(note["description"]) == 32000
    assert note["description"].endswith(TRUNCATION_MARKER)


def test_add_note_to_a_missing_ticket_is_rejected(target: AutotaskRestTarget) -> None:
    with pytest.raises(TargetRejected) as caught:
        target.add_note(999, "t", "text")
    assert caught.value.response is not None
    assert "does not reference an existing entity" in str(caught.value.response["body"])


def test_set_status_complete_sets_completed_date_and_resolution(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(draft())
    target.set_status(ref.ticket_id, 5, resolution="Cleared by monitoring.")
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert ticket["status"] == 5
    assert ticket["completedDate"] is not None
    assert ticket["resolution"] == "Cleared by monitoring."
    assert ticket["title"] == "Disk full on srv01"  # PATCH left the rest alone


def test_set_status_without_resolution_keeps_the_existing_one(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(draft())
    target.set_status(ref.ticket_id, 5, resolution="Cleared.")
    target.set_status(ref.ticket_id, 8)
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert (ticket["status"], ticket["completedDate"], ticket["resolution"]) == (
        8,
        None,
        "Cleared.",
    )


def test_get_ticket_returns_number_and_status_or_none(target: AutotaskRestTarget) -> None:
    ref = target.create_ticket(draft())
    target.set_status(ref.ticket_id, 8)
    assert target.get_ticket(ref.ticket_id) == TicketRef(ref.ticket_id, ref.ticket_number, 8)
    assert target.get_ticket(ref.ticket_id + 1000) is None


def test_failed_read_back_after_create_still_returns_the_ticket_id(
    target: AutotaskRestTarget, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(ticket_id: int) -> None:
        raise AutotaskUnavailable("read-back failed", ambiguous=False)

    monkeypatch.setattr(target.client, "get_ticket", unavailable)
    ref = target.create_ticket(draft())
    assert ref.ticket_number is None
    assert ticket_in_sandbox(sandbox, ref.ticket_id)["externalID"] == "alert-1f3a"


# -- failures as the sandbox answers them ------------------------------------------------------


def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(
    make_client: MakeClient, records: list[ApiCallRecord]
) -> None:
    wrong = "wrong-secret-0000"
    target = AutotaskRestTarget(make_client(secret=wrong))
    with pytest.raises(TargetAuthError) as caught:
        target.get_ticket(1)
    assert caught.value.retryable is False
    assert wrong not in str(caught.value) + repr(caught.value.response) + repr(records)
    # One zone re-lookup after the 401 (django-autotask, autotask-api.md §2), then give up.
    assert [(r.entity, r.http_status) for r in records] == [
        ("ZoneInformation", 200),
        ("Tickets", 401),
        ("ZoneInformation", 200),
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"username": "nobody@sandbox.test"}, "could not be determined"),
        ({"integration_code": "NOTTHECODE"}, "IntegrationCode is invalid"),
    ],
    ids=["unknown user", "wrong integration code"],
)
def test_unknown_user_or_integration_code_is_an_auth_error(
    make_client: MakeClient, override: dict[str, str], message: str
) -> None:
    target = AutotaskRestTarget(make_client(**override))
    with pytest.raises(TargetAuthError, match=message) as caught:
        target.create_ticket(draft())
    assert caught.value.retryable is False


def test_unknown_company_is_rejected_with_autotasks_message(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    with pytest.raises(TargetRejected) as caught:
        target.create_ticket(draft(company_id=12345))
    assert caught.value.retryable is False
    assert caught.value.response == {
        "status": 500,
        "body": {"errors": ["Value does not reference an existing entity for companyID . "]},
    }
    assert sandbox.tickets_with_notes() == []


def test_outage_is_retryable_unavailable(
    target: AutotaskRestTarget, sandbox_server: SandboxServer
) -> None:
    target.client.base_url()
    set_faults(sandbox_server, {"outage": True})
    with pytest.raises(TargetUnavailable) as caught:
        target.create_ticket(draft())
    assert caught.value.retryable is True
    assert caught.value.response is not None
    assert caught.value.response["status"] == 503


def test_injected_500_is_retryable(
    target: AutotaskRestTarget, sandbox_server: SandboxServer
) -> None:
    target.client.base_url()
    set_faults(sandbox_server, {"error_rate": 1.0, "error_status": 500, "error_count": 1})
    with pytest.raises(TargetUnavailable) as caught:
        target.get_ticket(1)
    assert caught.value.retryable is True
    assert target.get_ticket(1) is None  # the fault was used up: the retry succeeds


def test_dropped_create_is_ambiguous_and_the_marker_finds_the_one_ticket(
    target: AutotaskRestTarget, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    target.client.base_url()
    set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop", "count": 1}})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.create_ticket(draft(marker="alert-dropped"))
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True
    found = target.find_ticket_by_marker("alert-dropped")
    assert found is not None
    tickets = [t for t in sandbox.tickets_with_notes() if t["externalID"] == "alert-dropped"]
    assert [t["id"] for t in tickets] == [found.ticket_id]


def test_create_that_outlasts_the_read_timeout_is_ambiguous(
    make_client: MakeClient, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    target = AutotaskRestTarget(make_client(read_timeout=0.3))
    target.client.base_url()
    set_faults(
        sandbox_server,
        {"ambiguous_create": {"mode": "hang", "hang_seconds": 1.0, "count": 1}},
    )
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        target.create_ticket(draft(marker="alert-slow"))
    assert caught.value.ambiguous is True
    found = target.find_ticket_by_marker("alert-slow")
    assert found is not None
    assert len(sandbox.tickets_with_notes()) == 1


@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(thread_limit=1, latency_tiers=[])], ids=["one thread"]
)
def test_calls_over_the_thread_limit_are_rate_limited(
    make_client: MakeClient, sandbox_server: SandboxServer
) -> None:
    targets = [AutotaskRestTarget(make_client()) for _ in range(3)]
    for each in targets:
        each.client.base_url()  # zone lookups are exempt from thread limiting
    set_faults(sandbox_server, {"latency_ms": 400})
    start = threading.Barrier(len(targets))
    outcomes: list[object] = []

    def call(each: AutotaskRestTarget) -> None:
        start.wait()
        try:
            outcomes.append(each.get_ticket(1))
        except TargetError as e:
            outcomes.append(e)

    threads = [threading.Thread(target=call, args=(each,)) for each in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    limited = [o for o in outcomes if isinstance(o, TargetRateLimited)]
    assert len(outcomes) == 3
    assert outcomes.count(None) >= 1
    assert limited
    assert all(e.retryable for e in limited)
    assert "thread threshold" in str(limited[0])


@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(hourly_threshold=3, latency_tiers=[])], ids=["3 per hour"]
)
def test_calls_over_the_hourly_threshold_are_rate_limited(target: AutotaskRestTarget) -> None:
    for _ in range(3):
        assert target.get_ticket(1) is None
    with pytest.raises(TargetRateLimited, match="threshold") as caught:
        target.get_ticket(1)
    assert caught.value.retryable is True


def test_nothing_listening_is_unavailable_and_not_ambiguous() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is free again: nothing listens there, so the connection is refused.
    client = AutotaskRestClient(
        f"http://127.0.0.1:{port}/atservicesrest/",
        "alerts-api@sandbox.test",
        "a-secret-of-realistic-length",
        "TRACKINGIDENTIFIER000000000",
        allowed_zone_hosts=["127.0.0.1"],
        connect_timeout=2,
    )
    with pytest.raises(AutotaskUnavailable, match="request not sent") as caught:
        client.base_url()
    assert caught.value.ambiguous is False
    assert caught.value.retryable is True


def test_recorder_sees_every_call_the_sandbox_served(
    target: AutotaskRestTarget, sandbox: Sandbox, records: list[ApiCallRecord]
) -> None:
    ref = target.create_ticket(draft())
    target.add_note(ref.ticket_id, "n", "note")
    target.set_status(ref.ticket_id, 5)
    target.find_ticket_by_marker("alert-1f3a")
    served = [(c.method, c.status) for c in sandbox.calls()]
    assert [(r.method, r.http_status) for r in records] == served
    assert [r.entity for r in records] == [
        "ZoneInformation",
        "Tickets",
        "Tickets",
        "TicketNotes",
        "Tickets",
        "Tickets",
    ]
    assert records[-1].records == 1
