"""AutotaskSoapTarget over real HTTP against the running sandbox's SOAP face (limits, faults…).

Every envelope the client sends is captured through a requests Session hook and validated against
the schema embedded in the vendored WSDL (`sent_envelopes` fixture), so a request shape the real
ATWS could not deserialize fails the test that sent it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.targets.autotask_common import TRUNCATION_MARKER
from adapters.targets.autotask_soap import (
    AutotaskSoapClient,
    AutotaskSoapTarget,
    AutotaskUnavailable,
    SoapEntity,
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
from tests.adapters.targets.sandbox.test_soap import atws_schema

CONTOSO = 29683414  # a seeded company (adapters/targets/sandbox/seed.py)
QUEUE = 29682833
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


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


MakeClient = Callable[..., AutotaskSoapClient]


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def sent_envelopes() -> Iterator[list[bytes]]:
    """Every envelope a client sent; each is checked against the WSDL schema at teardown."""
    envelopes: list[bytes] = []
    yield envelopes
    schema = atws_schema()
    for data in envelopes:
        envelope = etree.fromstring(data)
        assert envelope.tag == f"{{{SOAP_ENV}}}Envelope"
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        parts = list(header) if header is not None else []
        body = envelope.find(f"{{{SOAP_ENV}}}Body")
        assert body is not None and len(body) == 1
        for element in [*parts, body[0]]:
            assert schema.validate(element), f"{schema.error_log}\n{data.decode()}"


@pytest.fixture
def make_client(
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    records: list[ApiCallRecord],
    sent_envelopes: list[bytes],
) -> MakeClient:
    """Build a client for the sandbox; keyword arguments override the API user's values."""

    def capture(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = response.request.body
        assert isinstance(body, bytes)
        sent_envelopes.append(body)

    def make(**overrides: Any) -> AutotaskSoapClient:
        session = requests.Session()
        session.hooks["response"].append(capture)
        options: dict[str, Any] = {
            "username": api_user.username,
            "secret": api_user.secret,
            "integration_code": api_user.integration_code,
            "allowed_zone_hosts": ["127.0.0.1"],
            "recorder": records.append,
            "session": session,
        }
        options.update(overrides)
        return AutotaskSoapClient(f"{sandbox_server.url}ATServices/1.6/atws.asmx", **options)

    return make


@pytest.fixture
def target(make_client: MakeClient) -> AutotaskSoapTarget:
    return AutotaskSoapTarget(make_client())


def set_faults(server: SandboxServer, plan: dict[str, Any]) -> None:
    response = requests.post(f"{server.url}_sandbox/faults", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def ticket_in_sandbox(sandbox: Sandbox, ticket_id: int) -> dict[str, Any]:
    found = [t for t in sandbox.tickets_with_notes() if t["id"] == ticket_id]
    assert len(found) == 1, found
    return found[0]


# -- the operations ------------------------------------------------------------------------------


def test_create_ticket_sends_every_mapped_field_and_the_marker(
    target: AutotaskSoapTarget, sandbox: Sandbox, sent_envelopes: list[bytes]
) -> None:
    ref = target.create_ticket(
        draft(
            queue_id=QUEUE,
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
        "queueID": QUEUE,
        "dueDateTime": "2030-03-21T09:30:00.000Z",
        "ticketCategory": 4,
        "ticketType": 5,
        "issueType": 2,
        "subIssueType": 201,
        "source": 8,
        "externalID": "alert-1f3a",
    }
    assert {key: ticket[key] for key in expected} == expected
    # One zone lookup and one create: the answer already carries the number and status.
    assert len(sent_envelopes) == 2


def test_naive_due_date_is_taken_as_utc(target: AutotaskSoapTarget, sandbox: Sandbox) -> None:
    ref = target.create_ticket(draft(due_at=datetime(2030, 3, 21, 9, 30)))
    assert ticket_in_sandbox(sandbox, ref.ticket_id)["dueDateTime"] == "2030-03-21T09:30:00.000Z"


def test_create_ticket_truncates_title_and_description_visibly(
    target: AutotaskSoapTarget, sandbox: Sandbox
) -> None:
    # Title ≤255 and description ≤8000 (FIELDINFO, autotask-api.md §3).
    ref = target.create_ticket(draft(title="T" * 400, description="D" * 9000))
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert len(ticket["title"]) == 255
    assert ticket["title"].endswith(TRUNCATION_MARKER)
    assert len(ticket["description"]) == 8000
    assert ticket["description"].endswith(TRUNCATION_MARKER)


def test_hostile_text_arrives_verbatim(target: AutotaskSoapTarget, sandbox: Sandbox) -> None:
    hostile = "</Title><Injected>1</Injected> & ]]> <![CDATA[ \"quotes\" 'apos'"
    ref = target.create_ticket(draft(title=hostile, description=hostile, marker="a<&>b"))
    ticket = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert (ticket["title"], ticket["description"]) == (hostile, hostile)
    assert target.find_ticket_by_marker("a<&>b") == ref


def test_marker_longer_than_external_id_is_refused_before_any_call(
    target: AutotaskSoapTarget, records: list[ApiCallRecord]
) -> None:
    with pytest.raises(TargetRejected, match="ExternalID"):
        target.create_ticket(draft(marker="m" * 51))
    assert records == []


def test_find_ticket_by_marker_finds_the_created_ticket(target: AutotaskSoapTarget) -> None:
    created = target.create_ticket(draft(marker="alert-find-me"))
    target.create_ticket(draft(marker="alert-other"))
    assert target.find_ticket_by_marker("alert-find-me") == created
    assert target.find_ticket_by_marker("alert-unknown") is None


def test_find_ticket_by_marker_prefers_the_lowest_id(
    target: AutotaskSoapTarget, make_client: MakeClient
) -> None:
    client = make_client()
    fields = {"AccountID": CONTOSO, "Status": 1, "Priority": 2, "ExternalID": "dup"}
    first, second = client.create(
        [
            SoapEntity("Ticket", fields | {"Title": "a"}),
            SoapEntity("Ticket", fields | {"Title": "b"}),
        ]
    )
    assert first["id"] < second["id"]
    found = target.find_ticket_by_marker("dup")
    assert found is not None
    assert found.ticket_id == first["id"]


def test_add_note_creates_a_note_on_the_ticket(
    target: AutotaskSoapTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(draft())
    note_id = target.add_note(ref.ticket_id, "Acknowledged", "Ack by on-call.")
    notes = ticket_in_sandbox(sandbox, ref.ticket_id)["notes"]
    assert [(n["id"], n["title"], n["description"]) for n in notes] == [
        (note_id, "Acknowledged", "Ack by on-call.")
    ]
    assert (notes[0]["noteType"], notes[0]["publish"]) == (1, 1)


def test_add_note_truncates_a_long_text_and_title(
    target: AutotaskSoapTarget, sandbox: Sandbox
) -> None:
    # Note description ≤32000, title ≤250 (FIELDINFO TicketNote, autotask-api.md §5).
    ref = target.create_ticket(draft())
    target.add_note(ref.ticket_id, "t" * 300, "x" * 33000)
    note = ticket_in_sandbox(sandbox, ref.ticket_id)["notes"][0]
    assert len(note["title"]) == 250
    assert len(note["description"]) == 32000
    assert note["description"].endswith(TRUNCATION_MARKER)


def test_add_note_to_a_missing_ticket_is_rejected(target: AutotaskSoapTarget) -> None:
    with pytest.raises(TargetRejected) as caught:
        target.add_note(999, "t", "text")
    assert caught.value.response is not None
    assert "does not reference an existing entity" in str(caught.value.response["body"])


def test_set_status_complete_keeps_every_other_field(
    target: AutotaskSoapTarget, sandbox: Sandbox
) -> None:
    ref = target.create_ticket(
        draft(queue_id=QUEUE, due_at=datetime(2030, 3, 21, 9, 30, tzinfo=UTC), source=8)
    )
    before = ticket_in_sandbox(sandbox, ref.ticket_id)
    target.set_status(ref.ticket_id, 5, resolution="Cleared by monitoring.")
    after = ticket_in_sandbox(sandbox, ref.ticket_id)
    assert after["status"] == 5
    assert after["completedDate"] is not None
    assert after["resolution"] == "Cleared by monitoring."
    # SOAP update clears what it is not sent (UpdateCall.htm, §10): the full entity went back.
    kept = [
        "ticketNumber",
        "title",
        "description",
        "queueID",
        "companyID",
        "priority",
        "dueDateTime",
        "source",
        "externalID",
        "createDate",
    ]
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert ref.ticket_number is not None and after["ticketNumber"] == ref.ticket_number


def test_set_status_without_resolution_keeps_the_existing_one(
    target: AutotaskSoapTarget, sandbox: Sandbox
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


def test_set_status_of_a_missing_ticket_is_rejected(target: AutotaskSoapTarget) -> None:
    with pytest.raises(TargetRejected, match="no Ticket with id 4242"):
        target.set_status(4242, 5)


def test_get_ticket_returns_number_and_status_or_none(target: AutotaskSoapTarget) -> None:
    ref = target.create_ticket(draft())
    target.set_status(ref.ticket_id, 8)
    assert target.get_ticket(ref.ticket_id) == TicketRef(ref.ticket_id, ref.ticket_number, 8)
    assert target.get_ticket(ref.ticket_id + 1000) is None


def test_threshold_and_usage_counts_the_calls(target: AutotaskSoapTarget) -> None:
    target.get_ticket(1)
    usage = target.client.threshold_and_usage()
    assert usage == {
        "ThresholdOfExternalRequest": 10000,
        "TimeframeOfLimitation": 60,
        "numberOfExternalRequest": 2,  # the query and this call; the zone lookup is exempt
    }


# -- failures as the sandbox answers them --------------------------------------------------------


def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(
    make_client: MakeClient, records: list[ApiCallRecord]
) -> None:
    wrong = "wrong-secret-0000"
    target = AutotaskSoapTarget(make_client(secret=wrong))
    with pytest.raises(TargetAuthError) as caught:
        target.get_ticket(1)
    assert caught.value.retryable is False
    assert caught.value.response is not None and caught.value.response["status"] == 401
    assert wrong not in str(caught.value) + repr(caught.value.response) + repr(records)
    # One zone re-lookup after the 401 (as for REST, autotask-api.md §2), then give up.
    assert [(r.entity, r.http_status) for r in records] == [
        ("getZoneInfo", 200),
        ("Ticket.query", 401),
        ("getZoneInfo", 200),
    ]


def test_wrong_integration_code_is_an_auth_error(make_client: MakeClient) -> None:
    target = AutotaskSoapTarget(make_client(integration_code="NOTTHECODE"))
    with pytest.raises(TargetAuthError, match="IntegrationCode is invalid") as caught:
        target.create_ticket(draft())
    assert caught.value.retryable is False


def test_unknown_user_is_an_auth_error_from_the_zone_lookup(make_client: MakeClient) -> None:
    target = AutotaskSoapTarget(make_client(username="nobody@sandbox.test"))
    with pytest.raises(TargetAuthError, match="ErrorCode -1"):
        target.get_ticket(1)


def test_unknown_company_is_rejected_with_autotasks_message(
    target: AutotaskSoapTarget, sandbox: Sandbox
) -> None:
    with pytest.raises(TargetRejected) as caught:
        target.create_ticket(draft(company_id=12345))
    assert caught.value.retryable is False
    assert "does not reference an existing entity for companyID" in str(caught.value)
    assert caught.value.response is not None
    assert caught.value.response["status"] == 200
    assert "<ReturnCode>-1</ReturnCode>" in str(caught.value.response["body"])
    assert sandbox.tickets_with_notes() == []


def test_outage_is_retryable_unavailable(
    target: AutotaskSoapTarget, sandbox_server: SandboxServer
) -> None:
    target.client.zone_url()
    set_faults(sandbox_server, {"outage": True})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.create_ticket(draft())
    assert isinstance(caught.value, TargetUnavailable)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.response is not None
    assert caught.value.response["status"] == 503
    assert "soap:Fault" in str(caught.value.response["body"])


def test_injected_500_is_retryable(
    target: AutotaskSoapTarget, sandbox_server: SandboxServer
) -> None:
    target.client.zone_url()
    set_faults(sandbox_server, {"error_rate": 1.0, "error_status": 500, "error_count": 1})
    with pytest.raises(TargetUnavailable) as caught:
        target.get_ticket(1)
    assert caught.value.retryable is True
    assert target.get_ticket(1) is None  # the fault was used up: the retry succeeds


def test_dropped_create_is_ambiguous_and_the_marker_finds_the_one_ticket(
    target: AutotaskSoapTarget, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    target.client.zone_url()
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
    target = AutotaskSoapTarget(make_client(read_timeout=0.3))
    target.client.zone_url()
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
    targets = [AutotaskSoapTarget(make_client()) for _ in range(3)]
    for each in targets:
        each.client.zone_url()  # zone lookups are exempt from thread limiting
    set_faults(sandbox_server, {"latency_ms": 400})
    start = threading.Barrier(len(targets))
    outcomes: list[object] = []

    def call(each: AutotaskSoapTarget) -> None:
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
    assert limited[0].response is not None and limited[0].response["status"] == 429


@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(hourly_threshold=3, latency_tiers=[])], ids=["3 per hour"]
)
def test_calls_over_the_hourly_threshold_are_rate_limited(target: AutotaskSoapTarget) -> None:
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
    client = AutotaskSoapClient(
        f"http://127.0.0.1:{port}/ATServices/1.6/atws.asmx",
        "alerts-api@sandbox.test",
        "a-secret-of-realistic-length",
        "TRACKINGIDENTIFIER000000000",
        allowed_zone_hosts=["127.0.0.1"],
        connect_timeout=2,
    )
    with pytest.raises(AutotaskUnavailable, match="request not sent") as caught:
        client.zone_url()
    assert caught.value.ambiguous is False
    assert caught.value.retryable is True


def test_recorder_sees_every_call_the_sandbox_served(
    target: AutotaskSoapTarget, sandbox: Sandbox, records: list[ApiCallRecord]
) -> None:
    ref = target.create_ticket(draft())
    target.add_note(ref.ticket_id, "n", "note")
    target.set_status(ref.ticket_id, 5)
    target.find_ticket_by_marker("alert-1f3a")
    served = [(c.operation, c.status) for c in sandbox.calls()]
    assert [(r.entity.rsplit(".", 1)[-1], r.http_status) for r in records] == served
    assert [r.entity for r in records] == [
        "getZoneInfo",
        "Ticket.create",
        "TicketNote.create",
        "Ticket.query",
        "Ticket.update",
        "Ticket.query",
    ]
    assert records[-1].records == 1


def test_every_request_of_a_battery_validates_against_the_wsdl(
    target: AutotaskSoapTarget, make_client: MakeClient, sent_envelopes: list[bytes]
) -> None:
    """Run every operation; the `sent_envelopes` fixture validates each request at teardown."""
    ref = target.create_ticket(
        draft(
            queue_id=QUEUE,
            due_at=datetime(2030, 3, 21, 9, 30, tzinfo=UTC),
            ticket_category=4,
            ticket_type=5,
            issue_type=2,
            sub_issue_type=201,
            source=8,
        )
    )
    target.add_note(ref.ticket_id, "", "no title")
    target.set_status(ref.ticket_id, 5, resolution="done")
    target.set_status(ref.ticket_id, 8)
    target.find_ticket_by_marker("alert-1f3a")
    target.get_ticket(ref.ticket_id)
    target.client.threshold_and_usage()
    with pytest.raises(TargetRejected):
        target.create_ticket(draft(company_id=1))
    with pytest.raises(TargetAuthError):
        AutotaskSoapTarget(make_client(integration_code="WRONG")).get_ticket(1)
    operations = [
        etree.QName(etree.fromstring(data).find(f"{{{SOAP_ENV}}}Body")[0]).localname  # type: ignore[index]
        for data in sent_envelopes
    ]
    assert set(operations) == {
        "getZoneInfo",
        "create",
        "update",
        "query",
        "getThresholdAndUsageInfo",
    }
    assert len(sent_envelopes) == 13
