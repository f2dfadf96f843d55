"""Each Autotask call's record keeps the request as sent and the answer, redacted and cut.

REST and SOAP clients against faked answers (`responses`, the Autotask edge only): the record's
`request` ({"url", "headers", "body"}) and `response` ({"status", "headers", "body"}) carry
what went out and came back, and never the secret, the tracking identifier or the Basic token
built from the username and the secret, in any form, not even in part where a body is cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from adapters.targets.autotask.http import LOG_BODY_KEEP_CHARS
from adapters.targets.autotask.rest import AutotaskRestClient, AutotaskUnavailable
from adapters.targets.autotask.soap import AutotaskSoapClient
from connector.domain import REDACTED, ApiCallRecord, OutboundRequest, RequestAction
from connector.errors import TargetError
from tests.adapters.targets.autotask.rest import test_client as rest
from tests.adapters.targets.autotask.soap import test_client as soap

SECRET = rest.SECRET
CODE = rest.CODE
#: Every text that must never be kept: the secret, the tracking identifier, the Basic token (and
#: the escaped forms redaction covers are checked through these, as they contain them).
NEVER_KEPT = (SECRET, CODE, soap.BASIC.removeprefix("Basic "))


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP call is faked; a registered answer that is never asked for fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def rest_client(records: list[ApiCallRecord]) -> AutotaskRestClient:
    return AutotaskRestClient(
        rest.LOOKUP,
        rest.USER,
        SECRET,
        CODE,
        allowed_zone_hosts=["*.autotask.net"],
        recorder=records.append,
    )


@pytest.fixture
def soap_client(records: list[ApiCallRecord]) -> AutotaskSoapClient:
    return AutotaskSoapClient(
        soap.LOOKUP,
        soap.USER,
        SECRET,
        CODE,
        allowed_zone_hosts=["*.autotask.net"],
        recorder=records.append,
    )


def kept_text(records: list[ApiCallRecord]) -> str:
    """Everything the records keep of requests and answers, as one text."""
    return json.dumps([[r.request, r.response] for r in records])


def assert_nothing_secret(records: list[ApiCallRecord]) -> None:
    text = kept_text(records)
    for secret in NEVER_KEPT:
        assert secret not in text
        assert secret[:12] not in text  # not even its start


# -- REST ----------------------------------------------------------------------------------------


def test_rest_record_keeps_the_request_as_sent_with_the_credentials_hidden(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    rest.add_zone(http)
    http.post(rest.BASE + "Tickets", json={"itemId": 128926}, headers={"X-Served-By": "web3"})
    assert rest_client.create_ticket({"title": "Disk full", "companyID": 7, "queueID": None}) == (
        128926
    )

    lookup, create = records
    assert lookup.request is not None and lookup.request["url"].startswith(rest.ZONE_INFO)
    assert lookup.response is not None and lookup.response["status"] == 200
    assert create.request is not None
    assert create.request["url"] == rest.BASE + "Tickets"
    headers = create.request["headers"]
    assert headers["Secret"] == headers["ApiIntegrationCode"] == headers["UserName"] == REDACTED
    assert headers["Content-Type"] == "application/json"
    assert json.loads(create.request["body"]) == {"title": "Disk full", "companyID": 7}
    assert create.response == {
        "status": 200,
        "headers": {"Content-Type": "application/json", "X-Served-By": "web3"},
        "body": '{"itemId": 128926}',
    }
    assert_nothing_secret(records)


def test_rest_record_redacts_a_secret_autotask_echoes_in_its_answer(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    rest.add_zone(http)
    http.post(
        rest.BASE + "Tickets",
        status=500,
        json={"errors": [f"Bad ApiIntegrationCode {CODE} for secret {SECRET}"]},
        headers={"X-Echo": CODE, "Set-Cookie": f"session={SECRET}"},
    )
    with pytest.raises(TargetError):
        rest_client.create_ticket({"title": "Disk full"})

    answer = records[1].response
    assert answer is not None and answer["status"] == 500
    assert REDACTED in answer["body"] and "Bad ApiIntegrationCode" in answer["body"]
    assert answer["headers"]["X-Echo"] == REDACTED
    assert answer["headers"]["Set-Cookie"] == REDACTED
    assert records[1].error is not None
    assert_nothing_secret(records)


def test_rest_send_keeps_the_admins_headers_and_the_rendered_body(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    rest.add_zone(http)
    http.post(rest.BASE + "Tickets", json={"itemId": 5})
    rest_client.base_url()
    body = json.dumps({"title": "CPU high", "description": f"token {SECRET}"})
    rest_client.send(
        OutboundRequest(
            action=RequestAction.CREATE,
            method="POST",
            url=rest.BASE + "Tickets",
            body=body,
            body_format="json",
            headers={"X-Trace": "abc", "secret": "admin-typed"},
        )
    )

    sent = records[-1].request
    assert sent is not None
    assert sent["headers"]["X-Trace"] == "abc"
    assert sent["headers"]["Secret"] == REDACTED
    assert "admin-typed" not in kept_text(records)
    assert json.loads(sent["body"]) == {"title": "CPU high", "description": f"token {REDACTED}"}
    assert_nothing_secret(records)


def test_rest_call_without_an_answer_keeps_its_request_and_no_response(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    rest.add_zone(http)
    http.get(rest.BASE + "Tickets/7", body=requests.ReadTimeout("read timed out"))
    rest_client.base_url()
    with pytest.raises(AutotaskUnavailable):
        rest_client.get_ticket(7)

    call = records[-1]
    assert call.http_status is None and call.response is None
    assert call.request is not None and call.request["url"] == rest.BASE + "Tickets/7"
    assert call.request["body"] == ""
    assert_nothing_secret(records)


def test_a_long_body_is_cut_with_a_marker_and_never_keeps_part_of_a_secret(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    # The secret straddles the cut: without care its first characters would be kept.
    filler = "x" * (LOG_BODY_KEEP_CHARS - 5)
    answer = filler + SECRET + "y" * 30_000
    rest.add_zone(http)
    http.get(rest.BASE + "Tickets/7", body=answer, content_type="application/json")
    rest_client.base_url()
    with pytest.raises(TargetError):
        rest_client.get_ticket(7)  # not JSON: an unexpected answer

    kept = records[-1].response
    assert kept is not None
    body = kept["body"]
    assert body.startswith(filler)
    assert len(body) < LOG_BODY_KEEP_CHARS + 100
    assert body.endswith(f"[cut: {len(answer) - len(filler)} more characters not kept]")
    assert SECRET[:5] not in body
    assert_nothing_secret(records)


def test_a_short_body_is_kept_whole(
    http: responses.RequestsMock, rest_client: AutotaskRestClient, records: list[ApiCallRecord]
) -> None:
    item: dict[str, Any] = {"item": {"id": 7, "description": "z" * 10_000}}
    rest.add_zone(http)
    http.get(rest.BASE + "Tickets/7", json=item)
    rest_client.base_url()
    rest_client.get_ticket(7)
    kept = records[-1].response
    assert kept is not None and json.loads(kept["body"]) == item


# -- SOAP ----------------------------------------------------------------------------------------


def test_soap_record_keeps_the_envelope_with_the_credentials_hidden(
    http: responses.RequestsMock, soap_client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    soap.add_zone(http)
    soap.add_answer(http, soap.atws_answer("create", soap.CREATED))
    created = soap_client.create([soap.new_ticket()])
    assert created[0]["id"] == 128926

    lookup, create = records
    assert lookup.request is not None and "<UserName>" in lookup.request["body"]
    assert create.request is not None and create.response is not None
    assert create.request["url"] == soap.ZONE
    assert create.request["headers"]["Authorization"] == REDACTED
    assert create.request["headers"]["SOAPAction"] == f'"{soap.ATWS}create"'
    body = create.request["body"]
    assert "<Title>CPU high</Title>" in body or ">CPU high</Title>" in body
    assert "&lt;redacted&gt;" in body  # the IntegrationCode, XML kept well-formed
    assert create.response["status"] == 200
    assert "T20180724.0001" in create.response["body"]
    assert_nothing_secret(records)


def test_soap_record_redacts_credentials_echoed_in_a_fault(
    http: responses.RequestsMock, soap_client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    soap.add_zone(http)
    soap.add_answer(
        http,
        soap.fault_answer("soap:Client", f"IntegrationCode {CODE} rejected for {soap.BASIC}"),
        status=500,
    )
    with pytest.raises(TargetError):
        soap_client.create([soap.new_ticket()])

    answer = records[-1].response
    assert answer is not None and answer["status"] == 500
    assert "IntegrationCode" in answer["body"] and "&lt;redacted&gt;" in answer["body"]
    assert_nothing_secret(records)
