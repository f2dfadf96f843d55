"""The sandbox's error texts: Autotask's own wording where it is documented, and opaque mode.

Real wording and where it was seen: ../shared/reference/autotask-api.md §2, §7 and §14, and the
table in adapters/sandbox/README.md. In opaque-errors mode every error body is Autotask's
generic `{"errors":["Something went wrong"]}` (SOAP: the same text in a Fault or ATWSError), with
the status unchanged, so that no test can depend on a text only the sandbox answers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, Sandbox, SandboxConfig, SandboxServer
from connector.cli import _settings, _start_sandbox
from tests import canaries
from tests.adapters.sandbox.test_soap import (
    ATWS,
    SoapClient,
    field,
    q,
    queryxml,
    ticket,
)
from tests.conftest import RestClient

GENERIC = {"errors": ["Something went wrong"]}


@pytest.fixture
def soap(sandbox_server: SandboxServer, api_user: ApiUser) -> SoapClient:
    """A SOAP client for the running sandbox."""
    return SoapClient(sandbox_server, api_user)


def control(server: SandboxServer, name: str) -> str:
    """The sandbox's own /_sandbox/<name> endpoint."""
    return f"{server.url}_sandbox/{name}"


def set_opaque(server: SandboxServer, on: bool = True) -> None:
    response = requests.post(control(server, "settings"), json={"opaque_errors": on}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["opaque_errors"] is on


def hold_threads(sandbox: Sandbox, user: ApiUser, endpoint: str) -> ExitStack:
    """Take every thread of `endpoint`, so the next call to it is over the thread limit."""
    stack = ExitStack()
    for _ in range(sandbox.limits.settings.thread_limit):
        stack.enter_context(sandbox.limits.thread_slot(user.integration_code, endpoint))
    return stack


# -- real wording ------------------------------------------------------------------------------


REST_WORDING = [
    # (case, request overrides, status, body, source)
    (
        "zone-unknown-user",
        {"zone_user": "nobody@example.com"},
        500,
        {"errors": ["Zone information could not be determined"]},
        "KelvinTegelaar/AutotaskAPI #17",
    ),
    ("unknown-user", {"UserName": "nobody@example.com"}, 500, GENERIC, "apigrate #19"),
    ("wrong-secret", {"Secret": "wrong"}, 401, GENERIC, "apigrate #19"),
    ("unknown-code", {"ApiIntegrationCode": "X" * 27}, 500, GENERIC, "apigrate #19"),
]


@pytest.mark.parametrize(
    ("case", "override", "status", "body", "source"),
    REST_WORDING,
    ids=[r[0] for r in REST_WORDING],
)
def test_rest_answers_in_autotasks_words(
    rest: RestClient,
    case: str,
    override: dict[str, str],
    status: int,
    body: dict[str, Any],
    source: str,
) -> None:
    if "zone_user" in override:
        response = requests.get(
            f"{rest.base}zoneInformation", params={"user": override["zone_user"]}, timeout=10
        )
    else:
        response = rest.get("Companies/0", headers=override)
    assert (response.status_code, response.json()) == (status, body), source


def test_the_thread_limit_is_refused_in_autotasks_words(
    rest: RestClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    # "API thread threshold of 3 threads has been exceeded" (n8n-nodes-autotask PR #107,
    # autotask-api.md §14); 429 over REST, as most reports have it (§7).
    with hold_threads(sandbox, api_user, "Companies"):
        response = rest.get("Companies/0")
    assert response.status_code == 429
    assert response.json() == {"errors": ["API thread threshold of 3 threads has been exceeded"]}


# -- opaque errors: REST -----------------------------------------------------------------------


def _validation(rest: RestClient) -> requests.Response:
    return rest.post("Tickets", json={"title": "no company"})


def _unknown_company(rest: RestClient) -> requests.Response:
    return rest.post("Tickets", json={"companyID": 1, "title": "t", "status": 1, "priority": 2})


def _bad_query(rest: RestClient) -> requests.Response:
    return rest.post("Tickets/query", json={"filter": [{"op": "eq", "field": "nope", "value": 1}]})


def _not_json(rest: RestClient) -> requests.Response:
    return rest.post("Tickets", data=b"{not json")


def _unknown_route(rest: RestClient) -> requests.Response:
    return rest.post("TicketNotes", json={})


def _no_delete(rest: RestClient) -> requests.Response:
    return rest.request("DELETE", "Tickets/1")


def _zone(rest: RestClient) -> requests.Response:
    return requests.get(f"{rest.base}zoneInformation", params={"user": "x"}, timeout=10)


OPAQUE_REST: list[tuple[str, Callable[[RestClient], requests.Response], int]] = [
    ("validation", _validation, 500),
    ("unknown-company", _unknown_company, 500),
    ("bad-query", _bad_query, 500),
    ("not-json", _not_json, 500),
    ("unknown-route-404", _unknown_route, 404),
    ("no-delete-405", _no_delete, 405),
    ("zone-500", _zone, 500),
]


@pytest.mark.parametrize(("case", "send", "status"), OPAQUE_REST, ids=[r[0] for r in OPAQUE_REST])
def test_opaque_mode_makes_every_rest_error_body_generic(
    rest: RestClient,
    sandbox_server: SandboxServer,
    case: str,
    send: Callable[[RestClient], requests.Response],
    status: int,
) -> None:
    before = send(rest)
    assert before.status_code == status and before.json() != GENERIC, before.text
    set_opaque(sandbox_server)
    after = send(rest)
    assert (after.status_code, after.json()) == (status, GENERIC)
    assert after.headers["Content-Type"] == "application/json"


def test_opaque_mode_covers_limits_and_injected_faults(
    rest: RestClient, sandbox_server: SandboxServer, sandbox: Sandbox, api_user: ApiUser
) -> None:
    set_opaque(sandbox_server)
    with hold_threads(sandbox, api_user, "Companies"):
        response = rest.get("Companies/0")
    assert (response.status_code, response.json()) == (429, GENERIC)
    sandbox.limits.settings.hourly_threshold = sandbox.limits.usage()
    response = rest.get("Companies/0")
    assert (response.status_code, response.json()) == (429, GENERIC)
    sandbox.limits.settings.hourly_threshold = 10_000
    requests.post(control(sandbox_server, "faults"), json={"outage": True}, timeout=10)
    response = rest.get("Companies/0")
    assert (response.status_code, response.json()) == (503, GENERIC)


def test_opaque_mode_leaves_successes_alone(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    set_opaque(sandbox_server)
    ticket_id = rest.create_ticket()
    assert rest.get(f"Tickets/{ticket_id}").json()["item"]["id"] == ticket_id


# -- opaque errors: SOAP -----------------------------------------------------------------------


def test_opaque_mode_makes_soap_errors_generic(
    soap: SoapClient, sandbox_server: SandboxServer
) -> None:
    set_opaque(sandbox_server)
    # An ATWSResponse error (ReturnCode -1, HTTP 200) carries one generic ATWSError.
    invalid = soap.create(ticket(Title=None))
    assert (invalid.status, invalid.return_code, invalid.errors) == (
        200,
        -1,
        ["Something went wrong"],
    )
    code = soap.call(ticket_query(), code=canaries.WRONG_INTEGRATION_CODE)
    assert code.errors == ["Something went wrong"]
    # A Fault keeps its code and status; its faultstring is generic.
    fault = soap.post(b"<not-xml", auth=(soap.user.username, soap.user.secret))
    assert fault.status == 500 and fault.fault == ("soap:Client", "Something went wrong")
    # Failed HTTP Basic: still 401, generic text.
    refused = soap.call(ticket_query(), auth=("nobody", "x"))
    assert (refused.status, refused.text) == (401, "Something went wrong")


def ticket_query() -> etree._Element:
    """A query operation for every Ticket with id > 0."""
    operation = etree.Element(q("query"), nsmap={None: ATWS})
    etree.SubElement(operation, q("sXML")).text = etree.CDATA(
        queryxml("Ticket", field("id", "greaterthan", "0"))
    )
    return operation


# -- switching it ------------------------------------------------------------------------------


def test_settings_are_shown_switched_and_reset(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    url = control(sandbox_server, "settings")
    assert requests.get(url, timeout=10).json() == {
        "opaque_errors": False,
        "strict_properties": True,
    }
    set_opaque(sandbox_server)
    lenient = requests.post(url, json={"strict_properties": False}, timeout=10).json()
    assert lenient == {"opaque_errors": True, "strict_properties": False}
    # Lenient: an unknown property is ignored, as real Autotask ignores it.
    assert rest.post("Tickets", json={**_ticket_body(), "nosuchfield": 1}).status_code == 200
    requests.post(control(sandbox_server, "reset"), timeout=10).raise_for_status()
    assert requests.get(url, timeout=10).json() == {
        "opaque_errors": False,
        "strict_properties": True,
    }


def _ticket_body() -> dict[str, Any]:
    return {"companyID": 29683414, "title": "t", "status": 1, "priority": 2}


@pytest.mark.parametrize(
    "body",
    [[], {"opaque_errors": "yes"}, {"verbose": True}],
    ids=["not-an-object", "not-a-boolean", "unknown-setting"],
)
def test_bad_settings_are_refused(sandbox_server: SandboxServer, body: object) -> None:
    response = requests.post(control(sandbox_server, "settings"), json=body, timeout=10)
    assert response.status_code == 400
    assert requests.get(control(sandbox_server, "settings"), timeout=10).json() == {
        "opaque_errors": False,
        "strict_properties": True,
    }


def test_opaque_errors_can_be_configured(api_user: ApiUser) -> None:
    sandbox = Sandbox(SandboxConfig(user=api_user, opaque_errors=True))
    with SandboxServer(sandbox) as server:
        response = RestClient(server, api_user).post("Tickets", json={})
        assert (response.status_code, response.json()) == (500, GENERIC)


def test_the_environment_switches_it_for_connector_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_SANDBOX_OPAQUE_ERRORS", "true")
    server = _start_sandbox(_settings(), "127.0.0.1", 0).start()
    try:
        assert server.sandbox.opaque_errors is True
    finally:
        server.stop()
