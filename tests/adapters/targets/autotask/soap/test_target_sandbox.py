"""AutotaskSoapTarget over real HTTP against the running sandbox's SOAP face (limits, faults…).

The requests are the default delivery requests (payload_templates/soap), rendered as the worker
renders them. Every envelope the client sends is captured through a requests Session hook and
validated against the schema embedded in the vendored WSDL (`sent_envelopes` fixture), so a
request shape the real ATWS could not deserialize fails the test that sent it.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, LimitSettings, Sandbox, SandboxServer
from adapters.targets.autotask.profile import DEFAULT_NAMESPACES, DEFAULT_XML_ID_PATH, SOAP_PROFILE
from adapters.targets.autotask.soap import (
    AutotaskSoapClient,
    AutotaskSoapTarget,
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
from tests.adapters.sandbox.test_soap import atws_schema
from tests.conftest import RestClient

CONTOSO = 29683414  # a seeded company (adapters/sandbox/seed.py)
QUEUE = 29682833
LEVEL_ONE = 29683481  # another seeded queue
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ATWS = "http://autotask.net/ATWS/v1_6/"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
NOW = datetime(2030, 3, 20, 9, 30, tzinfo=UTC)

SETTINGS = IntegrationSettings(
    default_company_id=CONTOSO,
    queue_id=QUEUE,
    source=8,
    issue_type=2,
    sub_issue_type=201,
    ticket_category=4,
    ticket_type=5,
)
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
    spec.slot: spec for spec in generate_requests(SOAP_PROFILE)
}

CREATE = Step(StepKind.CREATE, status=1)
ACKNOWLEDGE = Step(StepKind.SET_STATUS, status=8)
NOTE = Step(StepKind.NOTE, title="Acknowledged", text="Ack by on-call.")
COMPLETE = Step(StepKind.COMPLETE, status=5, title="Cleared", text="Cleared by monitoring.")


def q(name: str) -> str:
    return f"{{{ATWS}}}{name}"


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
def sent_headers() -> list[dict[str, str]]:
    """The headers of every request that went over the wire."""
    return []


@pytest.fixture
def make_client(
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    records: list[ApiCallRecord],
    sent_envelopes: list[bytes],
    sent_headers: list[dict[str, str]],
) -> MakeClient:
    """Build a client for the sandbox; keyword arguments override the API user's values."""

    def capture(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = response.request.body
        assert isinstance(body, bytes)
        sent_envelopes.append(body)
        sent_headers.append(dict(response.request.headers))

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


@pytest.fixture
def render(api_user: ApiUser) -> Callable[..., OutboundRequest]:
    """Render a slot's default request for ALERT as the worker renders it."""

    def render_slot(
        target: AutotaskSoapTarget,
        status: AlertStatus,
        action: RequestAction,
        step: Step,
        *,
        ticket: TicketRef | None = None,
        marker: str = "alert-1f3a",
        spec: RequestSpec | None = None,
        alert: IncomingAlert = ALERT,
    ) -> OutboundRequest:
        alert = replace(alert, status=status)
        draft = build_draft(
            alert,
            company_id=CONTOSO,
            status=step.status or 1,
            marker=marker,
            settings=SETTINGS,
            received_at=NOW,
            limits=SOAP_PROFILE.ticket_limits,
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
        return render_request(spec or SPECS[(status, action)], context, SOAP_PROFILE)

    return render_slot


Render = Callable[..., OutboundRequest]


def create(
    target: AutotaskSoapTarget, render: Render, marker: str = "alert-1f3a"
) -> tuple[int, TargetResponse]:
    """Send the Active create and read the new ticket's id as the worker does."""
    spec = SPECS[(AlertStatus.ACTIVE, RequestAction.CREATE)]
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE, marker=marker)
    response = target.send(request)
    return extract_ticket_id(
        response.body, spec.format, spec.id_path, SOAP_PROFILE.namespaces
    ), response


def set_faults(server: SandboxServer, plan: dict[str, Any]) -> None:
    response = requests.post(f"{server.url}_sandbox/faults", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def ticket_in_sandbox(sandbox: Sandbox, ticket_id: int) -> dict[str, Any]:
    found = [t for t in sandbox.tickets_with_notes() if t["id"] == ticket_id]
    assert len(found) == 1, found
    return found[0]


def sent_entity(response: TargetResponse) -> etree._Element:
    """The `<Entity>` of the envelope a TargetResponse says was sent."""
    envelope = etree.fromstring(str(response.sent["body"]).encode("utf-8"))
    entity = envelope.find(f".//{q('Entity')}")
    assert entity is not None
    return entity


# -- the lifecycle through the default requests -------------------------------------------------


def test_endpoint_url_is_the_zones_atws_address(
    target: AutotaskSoapTarget, sandbox_server: SandboxServer
) -> None:
    assert target.endpoint_url() == f"{sandbox_server.url}ATServices/1.6/atws.asmx"


def test_lifecycle_through_the_default_requests(
    target: AutotaskSoapTarget, render: Render, sandbox: Sandbox, sent_envelopes: list[bytes]
) -> None:
    ticket_id, created = create(target, render)
    ticket = ticket_in_sandbox(sandbox, ticket_id)
    # The create's answer carries the ticket: the worker needs no read-back.
    assert created.ticket == TicketRef(ticket_id, ticket["ticketNumber"], 1)
    expected = {
        "companyID": CONTOSO,
        "title": "Disk full on srv01",
        "status": 1,
        "priority": SETTINGS.priority_map[Severity.ERROR],
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
    assert "C: has 1 % free." in ticket["description"]
    ref = TicketRef(ticket_id, ticket["ticketNumber"])

    acknowledged = target.send(
        render(target, AlertStatus.ACKNOWLEDGED, RequestAction.UPDATE, ACKNOWLEDGE, ticket=ref)
    )
    assert acknowledged.ticket == TicketRef(ticket_id, ticket["ticketNumber"], 8)
    assert ticket_in_sandbox(sandbox, ticket_id)["status"] == 8
    noted = target.send(
        render(target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=ref)
    )
    assert noted.ticket is None  # a TicketNote came back, not a Ticket
    completed = target.send(
        render(target, AlertStatus.CLEARED, RequestAction.UPDATE, COMPLETE, ticket=ref)
    )
    assert completed.ticket is not None and completed.ticket.status == 5

    after = ticket_in_sandbox(sandbox, ticket_id)
    assert (after["status"], after["resolution"]) == (5, "Cleared by monitoring.")
    assert after["completedDate"] is not None
    # SOAP update clears what it is not sent (UpdateCall.htm, §10): the full ticket went back.
    assert {key: after[key] for key in expected if key != "status"} == {
        key: ticket[key] for key in expected if key != "status"
    }
    assert (after["description"], after["ticketNumber"], after["createDate"]) == (
        ticket["description"],
        ticket["ticketNumber"],
        ticket["createDate"],
    )
    [note] = after["notes"]
    assert (note["title"], note["description"], note["noteType"], note["publish"]) == (
        "Acknowledged",
        "Ack by on-call.",
        1,
        1,
    )
    assert (
        extract_ticket_id(noted.body, "xml", DEFAULT_XML_ID_PATH, DEFAULT_NAMESPACES) == note["id"]
    )
    operations = [
        etree.QName(etree.fromstring(data).find(f"{{{SOAP_ENV}}}Body")[0]).localname  # type: ignore[index]
        for data in sent_envelopes
    ]
    # Each update reads the ticket first, then sends it back whole.
    assert operations == ["getZoneInfo", "create", "query", "update", "create", "query", "update"]


def test_update_keeps_what_an_engineer_changed(
    target: AutotaskSoapTarget, render: Render, sandbox: Sandbox, rest: RestClient
) -> None:
    ticket_id, _ = create(target, render)
    # An engineer moves the ticket to another queue and raises its priority in Autotask.
    changed = rest.patch("Tickets", json={"id": ticket_id, "queueID": LEVEL_ONE, "priority": 4})
    assert changed.status_code == 200, changed.text
    before = ticket_in_sandbox(sandbox, ticket_id)

    response = target.send(
        render(
            target,
            AlertStatus.ACKNOWLEDGED,
            RequestAction.UPDATE,
            ACKNOWLEDGE,
            ticket=TicketRef(ticket_id),
        )
    )

    after = ticket_in_sandbox(sandbox, ticket_id)
    assert (after["status"], after["queueID"], after["priority"]) == (8, LEVEL_ONE, 4)
    kept = ["title", "description", "companyID", "dueDateTime", "source", "externalID"]
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    # The merged envelope is what `sent` shows: the template's Status, the queried fields, each
    # with the type the query answered with.
    entity = sent_entity(response)
    fields = {etree.QName(e).localname: e for e in entity}
    assert fields["Status"].text == "8"
    assert fields["QueueID"].text == str(LEVEL_ONE)
    assert fields["Priority"].text == "4"
    assert fields["Status"].get(XSI_TYPE) == "xsd:int"
    assert fields["Title"].get(XSI_TYPE) == "xsd:string"


def test_update_of_a_missing_ticket_is_rejected_and_nothing_is_updated(
    target: AutotaskSoapTarget, render: Render, records: list[ApiCallRecord]
) -> None:
    request = render(
        target,
        AlertStatus.ACKNOWLEDGED,
        RequestAction.UPDATE,
        ACKNOWLEDGE,
        ticket=TicketRef(4242),
    )
    with pytest.raises(TargetRejected, match="no Ticket with id 4242"):
        target.send(request)
    assert [r.entity for r in records] == ["getZoneInfo", "Ticket.query"]


def test_note_on_a_missing_ticket_is_rejected_with_autotasks_message(
    target: AutotaskSoapTarget, render: Render
) -> None:
    request = render(
        target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=TicketRef(999)
    )
    with pytest.raises(TargetRejected) as caught:
        target.send(request)
    assert caught.value.response is not None
    # Autotask's reference error (autotask-api.md §14).
    assert (
        "Reference value on field: ticketID of type: Ticket does not exist or is invalid."
        in str(caught.value.response["body"])
    )


def test_unknown_company_is_rejected_with_autotasks_message(
    target: AutotaskSoapTarget, render: Render, sandbox: Sandbox
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    request = replace(request, body=request.body.replace(str(CONTOSO), "12345"))
    with pytest.raises(TargetRejected) as caught:
        target.send(request)
    assert caught.value.retryable is False
    assert (
        "Reference value on field: companyID of type: Account does not exist or is invalid."
        in str(caught.value)
    )
    assert caught.value.response is not None
    assert caught.value.response["status"] == 200
    assert "<ReturnCode>-1</ReturnCode>" in str(caught.value.response["body"])
    assert sandbox.tickets_with_notes() == []


def test_hostile_alert_text_arrives_verbatim(
    target: AutotaskSoapTarget, render: Render, sandbox: Sandbox
) -> None:
    hostile = "</Title><Injected>1</Injected> & ]]> \"quotes\" 'apos' ##MARKER## {{7*7}}"
    request = render(
        target,
        AlertStatus.ACTIVE,
        RequestAction.CREATE,
        CREATE,
        marker="a<&>b",
        alert=replace(ALERT, title=hostile),
    )
    response = target.send(request)
    ticket_id = extract_ticket_id(response.body, "xml", DEFAULT_XML_ID_PATH, DEFAULT_NAMESPACES)
    assert ticket_in_sandbox(sandbox, ticket_id)["title"] == hostile
    found = target.find_ticket_by_marker("a<&>b")
    assert found is not None and found.ticket_id == ticket_id


def test_every_call_is_recorded_once_with_its_entity(
    target: AutotaskSoapTarget, render: Render, sandbox: Sandbox, records: list[ApiCallRecord]
) -> None:
    ticket_id, _ = create(target, render)
    ref = TicketRef(ticket_id)
    target.send(render(target, AlertStatus.ACKNOWLEDGED, RequestAction.NOTE, NOTE, ticket=ref))
    target.send(render(target, AlertStatus.CLEARED, RequestAction.UPDATE, COMPLETE, ticket=ref))
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
    assert all(r.error is None for r in records)
    assert records[-1].records == 1


def test_find_ticket_by_marker_prefers_the_lowest_id(
    target: AutotaskSoapTarget, render: Render
) -> None:
    first, _ = create(target, render, marker="dup")
    second, _ = create(target, render, marker="dup")
    assert first < second
    found = target.find_ticket_by_marker("dup")
    assert found is not None and found.ticket_id == first
    assert target.find_ticket_by_marker("alert-unknown") is None


def test_get_ticket_returns_number_and_status_or_none(
    target: AutotaskSoapTarget, render: Render
) -> None:
    ticket_id, created = create(target, render)
    assert target.get_ticket(ticket_id) == created.ticket
    assert target.get_ticket(ticket_id + 1000) is None


def test_threshold_and_usage_counts_the_calls(target: AutotaskSoapTarget) -> None:
    target.get_ticket(1)
    usage = target.client.threshold_and_usage()
    assert usage == {
        "ThresholdOfExternalRequest": 10000,
        "TimeframeOfLimitation": 60,
        "numberOfExternalRequest": 2,  # the query and this call; the zone lookup is exempt
    }


# -- what goes over the wire ----------------------------------------------------------------------


def test_sent_shows_the_envelope_with_every_credential_redacted(
    target: AutotaskSoapTarget, render: Render, api_user: ApiUser, records: list[ApiCallRecord]
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    # No template sees the tracking identifier: the client adds it to the empty IntegrationCode.
    assert api_user.integration_code not in request.body
    response = target.send(request)
    headers = response.sent["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == REDACTED
    assert headers["SOAPAction"] == f'"{ATWS}create"'
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.sent["method"] == "POST"
    assert response.sent["url"] == request.url
    # The envelope as sent, still XML: the marker is escaped where the code was.
    envelope = etree.fromstring(str(response.sent["body"]).encode("utf-8"))
    assert envelope.findtext(f".//{q('IntegrationCode')}") == REDACTED
    assert envelope.findtext(f".//{q('Title')}") == "Disk full on srv01"
    seen = repr(response) + repr(records)
    assert api_user.secret not in seen
    assert api_user.integration_code not in seen
    assert target.client._basic not in seen  # noqa: SLF001 -- the Basic token itself


def test_envelope_without_an_integration_code_gets_the_clients(
    target: AutotaskSoapTarget,
    render: Render,
    sandbox: Sandbox,
    sent_envelopes: list[bytes],
    api_user: ApiUser,
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    start = request.body.index("<soap:Header>")
    end = request.body.index("</soap:Header>") + len("</soap:Header>")
    response = target.send(replace(request, body=request.body[:start] + request.body[end:]))
    assert response.status == 200  # the sandbox checked the code
    assert len(sandbox.tickets_with_notes()) == 1
    envelope = etree.fromstring(sent_envelopes[-1])
    assert envelope.findtext(f".//{q('IntegrationCode')}") == api_user.integration_code


def test_admin_headers_are_sent_but_cannot_override_the_credentials(
    target: AutotaskSoapTarget,
    render: Render,
    api_user: ApiUser,
    sent_headers: list[dict[str, str]],
) -> None:
    request = replace(
        render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE),
        headers={
            "X-Request-Source": "alert-connector",
            "authorization": "Basic YXR0YWNrZXI6eA==",
            "soapaction": '"http://autotask.net/ATWS/v1_6/delete"',
            "Content-Type": "application/json",
        },
    )
    response = target.send(request)
    assert response.status == 200
    wire = {name.lower(): value for name, value in sent_headers[-1].items()}
    assert wire["x-request-source"] == "alert-connector"
    assert wire["authorization"] == "Basic " + target.client._basic  # noqa: SLF001
    assert wire["soapaction"] == f'"{ATWS}create"'
    assert wire["content-type"] == "text/xml; charset=utf-8"
    assert api_user.secret not in repr(response.sent)


@pytest.mark.parametrize(
    "body",
    [
        "not xml at all",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>&e;</soap:Body></soap:Envelope>',
        '<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>',
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body/></soap:Envelope>',
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><create/></soap:Body></soap:Envelope>',
    ],
    ids=["not xml", "doctype", "soap 1.2", "empty body", "operation outside atws"],
)
def test_unusable_envelope_is_rejected_without_a_call(
    make_client: MakeClient,
    sandbox_server: SandboxServer,
    records: list[ApiCallRecord],
    sandbox: Sandbox,
    body: str,
) -> None:
    target = AutotaskSoapTarget(make_client())
    request = OutboundRequest(
        action=RequestAction.CREATE,
        method="POST",
        url=f"{sandbox_server.url}ATServices/1.6/atws.asmx",
        body=body,
        body_format="xml",
    )
    with pytest.raises(TargetRejected, match="SOAP") as caught:
        target.send(request)
    assert caught.value.retryable is False
    assert records == [] and sandbox.calls() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/ATServices/1.6/atws.asmx",
        "https://webservices2.autotask.net.evil.example/ATServices/1.6/atws.asmx",
        "http://169.254.169.254/latest/meta-data/",
    ],
    ids=["other host", "lookalike suffix", "cloud metadata"],
)
def test_url_outside_the_allowed_hosts_is_refused_without_a_call(
    target: AutotaskSoapTarget,
    render: Render,
    sandbox: Sandbox,
    records: list[ApiCallRecord],
    url: str,
) -> None:
    ticket_id, _ = create(target, render)
    request = render(
        target,
        AlertStatus.ACKNOWLEDGED,
        RequestAction.UPDATE,
        ACKNOWLEDGE,
        ticket=TicketRef(ticket_id),
    )
    calls = len(records)
    with pytest.raises(TargetRejected, match="refusing to call it"):
        target.send(replace(request, url=url))
    assert len(records) == calls  # not even the query an update starts with


# -- failures as the sandbox answers them --------------------------------------------------------


def test_wrong_secret_is_an_auth_error_after_one_zone_relookup(
    make_client: MakeClient, render: Render, records: list[ApiCallRecord]
) -> None:
    wrong = canaries.WRONG_AUTOTASK_SECRET
    target = AutotaskSoapTarget(make_client(secret=wrong))
    with pytest.raises(TargetAuthError) as caught:
        target.send(render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE))
    assert caught.value.retryable is False
    assert caught.value.response is not None and caught.value.response["status"] == 401
    assert wrong not in str(caught.value) + repr(caught.value.response) + repr(records)
    # One zone re-lookup after the 401 (as for REST, autotask-api.md §2); the zone did not
    # change, so the envelope is not sent again.
    assert [(r.entity, r.http_status) for r in records] == [
        ("getZoneInfo", 200),
        ("Ticket.create", 401),
        ("getZoneInfo", 200),
    ]


def test_wrong_integration_code_is_an_auth_error(
    make_client: MakeClient, render: Render, sandbox: Sandbox
) -> None:
    target = AutotaskSoapTarget(make_client())
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    # The template's IntegrationCode is blank and the client fills it; one the admin wrote
    # into the template stays (a wrong one is the template's to fix).
    wrong = re.sub(
        r"<IntegrationCode\s*/>|<IntegrationCode>\s*</IntegrationCode>",
        f"<IntegrationCode>{canaries.WRONG_INTEGRATION_CODE}</IntegrationCode>",
        request.body,
    )
    assert canaries.WRONG_INTEGRATION_CODE in wrong
    with pytest.raises(TargetAuthError, match="IntegrationCode is invalid") as caught:
        target.send(replace(request, body=wrong))
    assert caught.value.retryable is False


def test_unknown_user_is_an_auth_error_from_the_zone_lookup(make_client: MakeClient) -> None:
    target = AutotaskSoapTarget(make_client(username="nobody@sandbox.test"))
    with pytest.raises(TargetAuthError, match="ErrorCode -1"):
        target.endpoint_url()


def test_outage_is_retryable_and_not_ambiguous(
    target: AutotaskSoapTarget, render: Render, sandbox_server: SandboxServer
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    set_faults(sandbox_server, {"outage": True})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.send(request)
    assert isinstance(caught.value, TargetUnavailable)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.response is not None
    assert caught.value.response["status"] == 503
    assert "soap:Fault" in str(caught.value.response["body"])


def test_server_error_on_create_is_retryable_and_ambiguous(
    target: AutotaskSoapTarget, render: Render, sandbox_server: SandboxServer
) -> None:
    request = render(target, AlertStatus.ACTIVE, RequestAction.CREATE, CREATE)
    set_faults(sandbox_server, {"error_rate": 1.0, "error_status": 500, "error_count": 1})
    with pytest.raises(AutotaskUnavailable) as caught:
        target.send(request)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True  # the create may have been applied behind the 500


def test_dropped_create_is_ambiguous_and_the_marker_finds_the_one_ticket(
    target: AutotaskSoapTarget, render: Render, sandbox_server: SandboxServer, sandbox: Sandbox
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
    make_client: MakeClient, render: Render, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    target = AutotaskSoapTarget(make_client(read_timeout=0.3))
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
    targets = [AutotaskSoapTarget(make_client()) for _ in range(3)]
    for each in targets:
        each.endpoint_url()  # zone lookups are exempt from thread limiting
    set_faults(sandbox_server, {"latency_ms": 400})
    start = threading.Barrier(len(targets))
    outcomes: list[object] = []

    def call(each: AutotaskSoapTarget) -> None:
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
    # Over SOAP the sandbox refuses with a soap:Server Fault and HTTP 500, as ASMX answers
    # (adapters/sandbox/README.md); the client knows it by the real wording.
    assert limited[0].response is not None and limited[0].response["status"] == 500


@pytest.mark.parametrize(
    "limit_settings", [LimitSettings(hourly_threshold=3, latency_tiers=[])], ids=["3 per hour"]
)
def test_sends_over_the_hourly_threshold_are_rate_limited(
    target: AutotaskSoapTarget, render: Render
) -> None:
    for marker in ("a", "b", "c"):
        create(target, render, marker=marker)
    with pytest.raises(TargetRateLimited, match="threshold") as caught:
        create(target, render, marker="d")
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
        AutotaskSoapTarget(client).endpoint_url()
    assert caught.value.ambiguous is False
    assert caught.value.retryable is True
