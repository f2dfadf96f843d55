"""Ticket ids read back from REST and SOAP answers; id paths checked at save time."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import pytest
import requests

from adapters.sandbox import ApiUser, SandboxServer
from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE, TICKET_LIMITS
from connector.errors import ExtractionError, TemplateRejected
from connector.payloads.extraction import extract_ticket_id, validate_id_path
from connector.payloads.formats import Format
from connector.payloads.templates import compile_template
from tests.adapters.sandbox.test_soap import ATWS
from tests.connector.payloads.support import (
    alert,
    context_for,
    template,
    with_integration_code,
)


def extract(
    body: str | bytes,
    fmt: Format,
    path: str | None = None,
    namespaces: Mapping[str, str] | None = None,
) -> int:
    """extract_ticket_id with the profile's id path and namespaces where a test gives none."""
    profile = REST_PROFILE if fmt == "json" else SOAP_PROFILE
    return extract_ticket_id(body, fmt, path or profile.id_path, namespaces or profile.namespaces)


def validate_path(fmt: Format, path: str) -> None:
    """validate_id_path with the profile's namespaces."""
    profile = REST_PROFILE if fmt == "json" else SOAP_PROFILE
    validate_id_path(fmt, path, profile.namespaces)


CREATE_RESPONSE = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <soap:Body>
    <createResponse xmlns="http://autotask.net/ATWS/v1_6/"><createResult>
      <ReturnCode>1</ReturnCode>
      <EntityResults><Entity xsi:type="Ticket"><id>8440</id><UserDefinedFields/>
        <Title>CPU high</Title></Entity></EntityResults>
      <EntityResultType>ticket</EntityResultType>
      <Errors/>
      <EntityReturnInfoResults><EntityReturnInfo><EntityId>8440</EntityId>
        <DatabaseAction>Created</DatabaseAction>
        <DuplicateStatus><Found>false</Found><Ignored>false</Ignored></DuplicateStatus>
      </EntityReturnInfo></EntityReturnInfoResults>
    </createResult></createResponse>
  </soap:Body>
</soap:Envelope>"""

FAILED_RESPONSE = """<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><createResponse xmlns="http://autotask.net/ATWS/v1_6/"><createResult>
    <ReturnCode>-1</ReturnCode><EntityResults/><Errors><ATWSError>
    <Message>IntegrationCode is invalid.</Message></ATWSError></Errors>
  </createResult></createResponse></soap:Body></soap:Envelope>"""

EXTRACTED = [
    ("json itemId", '{"itemId": 128926}', "json", None, None, 128926),
    ("json item.id", '{"item": {"id": 77, "title": "x"}}', "json", "$.item.id", None, 77),
    ("json id as text", '{"itemId": "42"}', "json", None, None, 42),
    (
        "json filter",
        '{"items": [{"id": 1}, {"id": 9}]}',
        "json",
        "$.items[?(@.id > 1)].id",
        None,
        9,
    ),
    ("soap createResponse", CREATE_RESPONSE, "xml", None, None, 8440),
    (
        "soap EntityReturnInfo",
        CREATE_RESPONSE,
        "xml",
        "//a:EntityReturnInfo/a:EntityId",
        {"a": "http://autotask.net/ATWS/v1_6/"},
        8440,
    ),
    ("xpath string", CREATE_RESPONSE, "xml", "string(//ATWS:EntityId)", None, 8440),
    ("xml bytes", CREATE_RESPONSE.encode(), "xml", None, None, 8440),
]


@pytest.mark.parametrize(
    ("body", "fmt", "path", "namespaces", "expected"),
    [row[1:] for row in EXTRACTED],
    ids=[row[0] for row in EXTRACTED],
)
def test_extract_ticket_id(
    body: str | bytes,
    fmt: Format,
    path: str | None,
    namespaces: dict[str, str] | None,
    expected: int,
) -> None:
    assert extract(body, fmt, path, namespaces) == expected


NO_ID = [
    ("json without itemId", '{"errors": ["Missing required field"]}', "json", "has no ticket id"),
    ("json null id", '{"itemId": null}', "json", "not a positive integer"),
    ("json boolean id", '{"itemId": true}', "json", "not a positive integer"),
    ("json zero id", '{"itemId": 0}', "json", "not a positive integer"),
    ("json text id", '{"itemId": "T2024"}', "json", "not a positive integer"),
    ("not json", "<html>Service Unavailable</html>", "json", "not JSON"),
    ("soap failure", FAILED_RESPONSE, "xml", "has no ticket id"),
    ("not xml", '{"itemId": 1}', "xml", "not valid XML"),
    (
        "xml doctype",
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><id>&x;</id></r>',
        "xml",
        "DOCTYPE",
    ),
]


@pytest.mark.parametrize(
    ("body", "fmt", "reason"), [row[1:] for row in NO_ID], ids=[row[0] for row in NO_ID]
)
def test_a_response_without_an_id_is_an_error_showing_path_and_response(
    body: str, fmt: Format, reason: str
) -> None:
    with pytest.raises(ExtractionError, match=reason) as e:
        extract(body, fmt)
    message = str(e.value)
    assert ("$.itemId" if fmt == "json" else SOAP_PROFILE.id_path) in message
    assert body[:100] in message
    assert e.value.retryable is False
    assert e.value.response is not None and e.value.response["body"] == body


def test_the_response_shown_is_cut_to_2000_characters() -> None:
    body = json.dumps({"errors": ["x" * 5000]})
    with pytest.raises(ExtractionError) as e:
        extract(body, "json")
    assert e.value.response is not None and e.value.response["body"] == body[:2000]


@pytest.mark.parametrize(
    ("fmt", "path"),
    [("json", "$..["), ("json", "$.items[?(@.id >"), ("xml", "//ATWS:id["), ("xml", "//x:id")],
    ids=["json unclosed", "json bad filter", "xml unclosed", "xml unknown prefix"],
)
def test_invalid_id_paths_are_refused_at_save_time_and_fail_extraction(
    fmt: Format, path: str
) -> None:
    with pytest.raises(TemplateRejected, match="not valid"):
        validate_path(fmt, path)
    body = '{"itemId": 1}' if fmt == "json" else CREATE_RESPONSE
    with pytest.raises(ExtractionError, match=re.escape(path)):
        extract(body, fmt, path)


def test_default_id_paths_are_valid() -> None:
    validate_path("json", "$.itemId")
    validate_path("xml", SOAP_PROFILE.id_path)


def test_extracts_the_id_from_a_live_sandbox_reply(
    sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    response = requests.post(
        f"{sandbox_server.url}ATServices/1.6/atws.asmx",
        data=with_integration_code(
            compile_template(template("soap/create.xml"), "xml").render_payload(
                context_for(alert(), ticket_id=None), TICKET_LIMITS
            ),
            api_user.integration_code,
        ),
        auth=(api_user.username, api_user.secret),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ATWS}create"'},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    ticket_id = extract(response.content, "xml")
    assert f"<id>{ticket_id}</id>" in response.text
