"""AutotaskRestTarget over real HTTP against the running sandbox (limits, faults and all).

The requests are the default delivery requests (payload_templates/rest), rendered as the worker
renders them; every body sent and every answer is held to the Swagger models.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from adapters.sandbox import ApiUser, LimitSettings, Sandbox, SandboxServer
from adapters.targets.autotask.profile import REST_PROFILE
from adapters.targets.autotask.rest import (
    AutotaskRestClient,
    AutotaskRestTarget,
    AutotaskUnavailable,
)
from connector.domain import (
    REDACTED,
    AlertStatus,
    ApiCallRecord,
    IncomingAlert,
    OutboundRequest,
    RequestAction,
    Severity,
    Step,
    StepKind,
    TargetResponse,
    TicketRef,
)
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)
from connector.integrations.settings import IntegrationSettings
from connector.payloads.context import RenderContext
from connector.payloads.extraction import extract_ticket_id
from connector.payloads.requests import RequestSpec, generate_requests, render_request
from connector.pipeline.routing import build_draft
from tests import canaries
from tests.adapters.sandbox.test_conformance_rest import check_exchange

CONTOSO = 29683414  # a seeded company (adapters/sandbox/seed.py)
QUEUE = 29682833
NOW = datetime(2030, 3, 20, 9, 30, tzinfo=UTC)

SETTINGS = IntegrationSettings(default_company_id=CONTOSO, queue_id=QUEUE, source=8)
ALERT = IncomingAlert(
    source="generic",
    fingerprint="fp-disk-srv01",
    status=AlertStatus.ACTIVE,
    severity=Severity.ERROR,
    title="Disk full on srv01",
    message="C: has 1 % free.",
    host="srv01",
    started_at=NOW,
)
SPECS: dict[tuple[AlertStatus, RequestAction], RequestSpec] = {
    spec.slot: spec for spec in generate_requests(REST_PROFILE)
}

CREATE = Step(StepKind.CREATE, status=1)
ACKNOWLEDGE = Step(StepKind.SET_STATUS, status=8)
NOTE = Step(StepKind.NOTE, title="Acknowledged", text="Ack by on-call.")
COMPLETE = Step(StepKind.COMPLETE, status=5, title="Cleared", text="Cleared by monitoring.")


def render(
    target: AutotaskRestTarget,
    status: AlertStatus,
    action: RequestAction,
    step: Step,
    *,
    ticket: TicketRef | None = None,
    marker: str = "alert-1f3a",
    spec: RequestSpec | None = None,
    code: str = "",
) -> OutboundRequest:
    """The slot's default request, rendered for ALERT in `status` as the worker renders it."""
    alert = replace(ALERT, status=status)
    draft = build_draft(
        alert,
        company_id=CONTOSO,
        status=step.status or 1,
        marker=marker,
        settings=SETTINGS,
        received_at=NOW,
        limits=REST_PROFILE.ticket_limits,
    )
    context = RenderContext.build(
        alert,
        settings=SETTINGS,
        draft=draft,
        step=step,
        ticket=ticket,
        marker=marker,
        zone_url=target.endpoint_url(),
    )
    return render_request(spec or SPECS[(status, action)], context, REST_PROFILE)


def create(target: AutotaskRestTarget, marker: str = "alert-1f3a") -> tuple[int, TargetResponse]:
    """Send the Active create and read the new ticket's id as the worker does."""
    spec = SPECS[(AlertStatus.ACTIVE, RequestAction.CREATE)]
    response = target.send(
        render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE, marker=marker)
    )
    return extract_ticket_id(
        response.body, spec.format, spec.id_path, REST_PROFILE.namespaces
    ), response


def assert_conforms(response: TargetResponse) -> None:
    """The body sent and the answer conform to the Swagger operation the request names."""
    sent = response.sent
    check_exchange(
        str(sent["method"]),
        str(sent["url"]),
        json.loads(str(sent["body"])),
        json.loads(response.body),
    )


MakeClient = Callable[..., AutotaskRestClient]


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def sent_headers() -> list[dict[str, str]]:
    """The headers of every request that went over the wire."""
    return []


@pytest.fixture
def make_client(
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    records: list[ApiCallRecord],
    sent_headers: list[dict[str, str]],
) -> MakeClient:
    """Build a client for the sandbox; keyword arguments override the API user's values."""

    def capture(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sent_headers.append(dict(response.request.headers))

    def make(**overrides: Any) -> AutotaskRestClient:
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


# -- the lifecycle through the default requests -------------------------------------------------


def test_endpoint_url_is_the_zone_base_url(
    target: AutotaskRestTarget, sandbox_server: SandboxServer
) -> None:
    assert target.endpoint_url() == f"{sandbox_server.url}atservicesrest/v1.0/"


def test_lifecycle_through_the_default_requests(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ticket_id, created = create(target)
    assert created.status == 200
    assert created.ticket is None  # REST answers only {"itemId"}; the worker reads the id
    ticket = ticket_in_sandbox(sandbox, ticket_id)
    expected = {
        "companyID": CONTOSO,
        "title": "Disk full on srv01",
        "status": 1,
        "priority": SETTINGS.priority_map[Severity.ERROR],
        "queueID": QUEUE,
        "source": 8,
        "externalID": "alert-1f3a",
        "dueDateTime": "2030-03-21T09:30:00.000Z",
    }
    assert {key: ticket[key] for key in expected} == expected
    assert "C: has 1 % free." in ticket["description"]
    ref = TicketRef(ticket_id, ticket["ticketNumber"])

    acknowledged = target.send(
        render(target, AlertStatus.ACKNOWLEDGED, RequestAction.UPDATE, ACKNOWLEDGE, ticket=ref)
    )
    assert ticket_in_sandbox(sandbox, ticket_id)["status"] == 8
    noted = target.send(
        render(target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=ref)
    )
    completed = target.send(
        render(target, AlertStatus.CLEARED, RequestAction.UPDATE, COMPLETE, ticket=ref)
    )

    ticket = ticket_in_sandbox(sandbox, ticket_id)
    assert (ticket["status"], ticket["resolution"]) == (5, "Cleared by monitoring.")
    assert ticket["completedDate"] is not None
    assert ticket["title"] == "Disk full on srv01"  # PATCH left the rest alone
    assert ticket["queueID"] == QUEUE
    assert [
        (n["title"], n["description"], n["noteType"], n["publish"]) for n in ticket["notes"]
    ] == [("Acknowledged", "Ack by on-call.", 1, 1)]
    note_id = extract_ticket_id(noted.body, "json", REST_PROFILE.id_path, {})
    assert note_id == ticket["notes"][0]["id"]
    for response in (created, acknowledged, noted, completed):
        assert_conforms(response)
    assert [
        (r["method"], str(r["url"]).rsplit("v1.0/", 1)[1])
        for r in (created.sent, acknowledged.sent, noted.sent, completed.sent)
    ] == [
        ("POST", "Tickets"),
        ("PATCH", "Tickets"),
        ("POST", f"Tickets/{ticket_id}/Notes"),
        ("PATCH", "Tickets"),
    ]


def test_every_call_is_recorded_once_with_its_entity(
    target: AutotaskRestTarget, sandbox: Sandbox, records: list[ApiCallRecord]
) -> None:
    ticket_id, _ = create(target)
    ref = TicketRef(ticket_id)
    target.send(render(target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=ref))
    target.send(render(target, AlertStatus.CLEARED, RequestAction.UPDATE, COMPLETE, ticket=ref))
    target.find_ticket_by_marker("alert-1f3a")
    served = [(c.method, c.status) for c in sandbox.calls()]
    assert [(r.method, r.http_status) for r in records] == served
    assert [r.entity for r in records] == [
        "ZoneInformation",
        "Tickets",
        "TicketNotes",
        "Tickets",
        "Tickets",
    ]
    assert all(r.error is None for r in records)
    assert records[-1].records == 1


def test_find_ticket_by_marker_finds_the_created_ticket(target: AutotaskRestTarget) -> None:
    ticket_id, _ = create(target, marker="alert-find-me")
    create(target, marker="alert-other")
    found = target.find_ticket_by_marker("alert-find-me")
    assert found is not None and found.ticket_id == ticket_id
    assert found.status == 1 and found.ticket_number
    assert target.find_ticket_by_marker("alert-unknown") is None


def test_find_ticket_by_marker_prefers_the_lowest_id(target: AutotaskRestTarget) -> None:
    first, _ = create(target, marker="dup")
    create(target, marker="dup")
    found = target.find_ticket_by_marker("dup")
    assert found is not None
    assert found.ticket_id == first


def test_get_ticket_returns_number_and_status_or_none(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    ticket_id, _ = create(target)
    ref = TicketRef(ticket_id)
    target.send(
        render(target, AlertStatus.ACKNOWLEDGED, RequestAction.UPDATE, ACKNOWLEDGE, ticket=ref)
    )
    number = ticket_in_sandbox(sandbox, ticket_id)["ticketNumber"]
    assert target.get_ticket(ticket_id) == TicketRef(ticket_id, number, 8)
    assert target.get_ticket(ticket_id + 1000) is None


def test_note_on_a_missing_ticket_is_rejected_with_autotasks_message(
    target: AutotaskRestTarget,
) -> None:
    request = render(
        target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=TicketRef(999)
    )
    with pytest.raises(TargetRejected) as caught:
        target.send(request)
    assert caught.value.response is not None
    # Autotask's reference error (autotask-api.md §14).
    assert caught.value.response["body"] == {
        "errors": [
            "Reference value on field: ticketID of type: Ticket does not exist or is invalid."
            " ; on record number [1]."
        ]
    }


def test_unknown_company_is_rejected_with_autotasks_message(
    target: AutotaskRestTarget, sandbox: Sandbox
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    request = replace(request, body=request.body.replace(str(CONTOSO), "12345"))
    with pytest.raises(TargetRejected) as caught:
        target.send(request)
    assert caught.value.retryable is False
    assert caught.value.response == {
        "status": 500,
        "body": {
            "errors": [
                "Reference value on field: companyID of type: Account does not exist or is"
                " invalid. ; on record number [1]."
            ]
        },
    }
    assert sandbox.tickets_with_notes() == []


# -- what goes over the wire ----------------------------------------------------------------------


def test_sent_shows_the_request_with_every_credential_redacted(
    target: AutotaskRestTarget, api_user: ApiUser, records: list[ApiCallRecord]
) -> None:
    # An admin's header may carry the tracking identifier through ##INTEGRATIONCODE##.
    spec = replace(
        SPECS[(AlertStatus.ACTIVE, RequestAction.CREATE)],
        headers={"X-Tracking": "##INTEGRATIONCODE##"},
    )
    request = render(
        target,
        AlertStatus.ACTIVE,
        RequestAction.CREATE,
        CREATE,
        spec=spec,
        code=api_user.integration_code,
    )
    response = target.send(request)
    headers = response.sent["headers"]
    assert isinstance(headers, dict)
    assert headers["Secret"] == REDACTED
    assert headers["ApiIntegrationCode"] == REDACTED
    assert headers["X-Tracking"] == ""  # the token renders blank: no template sees the code
    assert headers["UserName"] == api_user.username
    assert headers["Content-Type"] == "application/json"
    assert response.sent["body"] == request.body
    assert response.sent["url"] == request.url
    seen = repr(response) + repr(records)
    assert api_user.secret not in seen
    assert api_user.integration_code not in seen


def test_admin_headers_are_sent_but_cannot_override_the_credentials(
    target: AutotaskRestTarget,
    api_user: ApiUser,
    sent_headers: list[dict[str, str]],
    sandbox: Sandbox,
) -> None:
    request = replace(
        render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE),
        headers={
            "X-Request-Source": "alert-connector",
            "secret": canaries.WRONG_AUTOTASK_SECRET,
            "USERNAME": "someone-else@example.com",
            "ApiIntegrationCode": "ATTACKER",
            "Content-Type": "text/plain",
            "Host": "evil.example.com",
        },
    )
    response = target.send(request)
    assert response.status == 200  # the sandbox checked the real credentials
    wire = {name.lower(): value for name, value in sent_headers[-1].items()}
    assert wire["x-request-source"] == "alert-connector"
    assert wire["secret"] == api_user.secret
    assert wire["username"] == api_user.username
    assert wire["apiintegrationcode"] == api_user.integration_code
    assert wire["content-type"] == "application/json"
    assert "host" not in wire  # the transport sets Host from the URL
    assert len(sandbox.tickets_with_notes()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/atservicesrest/v1.0/Tickets",
        "https://webservices2.autotask.net.evil.example/atservicesrest/v1.0/Tickets",
        "http://169.254.169.254/latest/meta-data/",
        "https://user:pass@127.0.0.1/atservicesrest/v1.0/Tickets",
    ],
    ids=["other host", "lookalike suffix", "cloud metadata", "user info"],
)
def test_url_outside_the_allowed_hosts_is_refused_without_a_call(
    make_client: MakeClient,
    sandbox: Sandbox,
    records: list[ApiCallRecord],
    sent_headers: list[dict[str, str]],
    url: str,
) -> None:
    target = AutotaskRestTarget(make_client())
    request = OutboundRequest(
        action=RequestAction.CREATE,
        method="POST",
        url=url,
        body='{"title": "x"}',
        body_format="json",
    )
    with pytest.raises(TargetRejected, match="refusing to call it") as caught:
        target.send(request)
    assert caught.value.retryable is False
    assert records == [] and sent_headers == [] and sandbox.calls() == []


# -- failures as the sandbox answers them ------------------------------------------------------


def test_wrong_secret_is_an_auth_error_after_one_zone_relookup(
    make_client: MakeClient, records: list[ApiCallRecord]
) -> None:
    wrong = "wrong-secret-0000"
    target = AutotaskRestTarget(make_client(secret=wrong))
    with pytest.raises(TargetAuthError) as caught:
        target.send(render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE))
    assert caught.value.retryable is False
    assert caught.value.response is not None and caught.value.response["status"] == 401
    assert wrong not in str(caught.value) + repr(caught.value.response) + repr(records)
    # One zone re-lookup after the 401 (django-autotask, autotask-api.md §2); the zone did not
    # change, so the request is not repeated.
    assert [(r.entity, r.http_status) for r in records] == [
        ("ZoneInformation", 200),
        ("Tickets", 401),
        ("ZoneInformation", 200),
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"username": "nobody@sandbox.test"}, "Zone information could not be determined"),
        ({"integration_code": canaries.WRONG_INTEGRATION_CODE}, "does not accept this API user"),
    ],
    ids=["unknown user", "wrong integration code"],
)
def test_unknown_user_or_integration_code_is_an_auth_error(
    make_client: MakeClient, sandbox_server: SandboxServer, override: dict[str, str], message: str
) -> None:
    # Autotask answers both with a bare HTTP 500 (autotask-api.md §2, apigrate #19): the unknown
    # user fails the zone lookup of the credentials check, the wrong code fails the check itself.
    target = AutotaskRestTarget(make_client(**override))
    request = OutboundRequest(
        action=RequestAction.CREATE,
        method="POST",
        url=f"{sandbox_server.url}atservicesrest/v1.0/Tickets",
        body='{"companyID": 29683414, "title": "t", "status": 1, "priority": 2}',
        body_format="json",
    )
    with pytest.raises(TargetAuthError, match=message) as caught:
        target.send(request)
    assert caught.value.retryable is False


def test_unknown_user_fails_at_the_zone_lookup(make_client: MakeClient) -> None:
    target = AutotaskRestTarget(make_client(username="nobody@sandbox.test"))
    with pytest.raises(TargetAuthError, match="could not be determined"):
        target.endpoint_url()


def test_outage_is_retryable_and_not_ambiguous(
    target: AutotaskRestTarget, sandbox_server: SandboxServer
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    set_faults(sandbox_server, {"outage": True})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.send(request)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.response is not None
    assert caught.value.response["status"] == 503


def test_server_error_on_create_is_retryable_and_ambiguous(
    target: AutotaskRestTarget, sandbox_server: SandboxServer
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    set_faults(sandbox_server, {"error_rate": 1.0, "error_status": 500, "error_count": 1})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.send(request)
    assert isinstance(caught.value, TargetUnavailable)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True  # the create may have been applied behind the 500
    assert caught.value.response is not None and caught.value.response["status"] == 500


def test_dropped_create_is_ambiguous_and_the_marker_finds_the_one_ticket(
    target: AutotaskRestTarget, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    request = render(
        target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE, marker="alert-dropped"
    )
    set_faults(sandbox_server, {"ambiguous_create": {"mode": "drop", "count": 1}})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.send(request)
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
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE, marker="slow")
    set_faults(
        sandbox_server,
        {"ambiguous_create": {"mode": "hang", "hang_seconds": 1.0, "count": 1}},
    )
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        target.send(request)
    assert caught.value.ambiguous is True
    assert target.find_ticket_by_marker("slow") is not None
    assert len(sandbox.tickets_with_notes()) == 1


@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(thread_limit=1, latency_tiers=[])], ids=["one thread"]
)
def test_calls_over_the_thread_limit_are_rate_limited(
    make_client: MakeClient, sandbox_server: SandboxServer
) -> None:
    targets = [AutotaskRestTarget(make_client()) for _ in range(3)]
    for each in targets:
        each.endpoint_url()  # zone lookups are exempt from thread limiting
    set_faults(sandbox_server, {"latency_ms": 400})
    start = threading.Barrier(len(targets))
    outcomes: list[object] = []

    def call(each: AutotaskRestTarget) -> None:
        start.wait(timeout=10)
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
def test_sends_over_the_hourly_threshold_are_rate_limited(target: AutotaskRestTarget) -> None:
    for marker in ("a", "b", "c"):
        create(target, marker=marker)
    with pytest.raises(TargetRateLimited, match="threshold") as caught:
        create(target, marker="d")
    assert caught.value.retryable is True
    assert caught.value.response is not None and caught.value.response["status"] == 429


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
        AutotaskRestTarget(client).endpoint_url()
    assert caught.value.ambiguous is False
    assert caught.value.retryable is True
