"""AutotaskSoapClient against faked answers (`responses`): zone, envelopes, errors, paging.

The canned answers follow the real ATWS shapes quoted in ../shared/reference/autotask-api.md §10
(trepidity/autotask_ruby fixtures: createResponse, queryResponse for a Ticket, getZoneInfo,
getThresholdAndUsageInfo).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
import responses
from lxml import etree
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from adapters.targets.autotask.profile import DEFAULT_NAMESPACES, DEFAULT_XML_ID_PATH
from adapters.targets.autotask.soap import (
    AutotaskSoapClient,
    AutotaskUnavailable,
    SoapEntity,
    XsdValue,
    build_queryxml,
)
from adapters.targets.autotask.soap.atws import wsdl_order
from adapters.targets.autotask.soap.client import classify_failure
from adapters.targets.autotask.soap.envelopes import (
    entity_id,
    merge_entity,
    parse_envelope,
    replace_entity,
)
from adapters.targets.autotask.soap.fields import FIELD_ORDER
from connector.domain import (
    REDACTED,
    ApiCallRecord,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketRef,
    ZoneAnswer,
)
from connector.errors import (
    TargetAuthError,
    TargetError,
    TargetRateLimited,
    TargetRejected,
    TargetUnavailable,
)
from connector.payloads.extraction import extract_ticket_id
from tests import canaries
from tests.adapters.sandbox.test_soap import WSDL, atws_schema

ATWS = "http://autotask.net/ATWS/v1_6/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOOKUP = "https://webservices.autotask.net/ATServices/1.6/atws.asmx"
ZONE = "https://webservices3.autotask.net/ATServices/1.6/atws.asmx"
USER = "alerts-api@example.test"
SECRET = canaries.AUTOTASK_SECRET
CODE = canaries.AUTOTASK_INTEGRATION_CODE
DESCRIPTION_REQUIRED = "Description is required.; on record number [1]."
BASIC = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
TICKET_QUERY = build_queryxml("Ticket", [("ExternalID", "equals", "m-1")])


# -- canned answers ------------------------------------------------------------------------------


def envelope(inner: str) -> str:
    """A SOAP 1.1 envelope declaring soap, xsi and xsd, as ASMX answers."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>'
        f"{inner}</soap:Body></soap:Envelope>"
    )


def zone_answer(url: str = ZONE, error_code: int = 0) -> str:
    """getZoneInfoResponse (trepidity zone_info_response.xml, autotask-api.md §10)."""
    url_element = f"<URL>{url}</URL>" if url else ""
    return envelope(
        f'<getZoneInfoResponse xmlns="{ATWS}"><getZoneInfoResult>{url_element}'
        f"<ErrorCode>{error_code}</ErrorCode><DataBaseType>Pro</DataBaseType><CI>30049</CI>"
        "<WebUrl>https://ww3.autotask.net/</WebUrl></getZoneInfoResult></getZoneInfoResponse>"
    )


def ticket_xml(ticket_id: int, **fields: tuple[str, str]) -> str:
    """`<Entity xsi:type="Ticket">` with id, UserDefinedFields, then (xsi type, text) fields."""
    values = "".join(
        f'<{name} xsi:type="{kind}">{text}</{name}>' for name, (kind, text) in fields.items()
    )
    return f'<Entity xsi:type="Ticket"><id>{ticket_id}</id><UserDefinedFields/>{values}</Entity>'


def atws_answer(
    operation: str,
    entities: str = "",
    *,
    errors: tuple[str, ...] = (),
    return_code: int = 1,
    info: str | None = None,
) -> str:
    """`<{op}Response><{op}Result>` holding an ATWSResponse."""
    error_xml = "".join(f"<ATWSError><Message>{m}</Message></ATWSError>" for m in errors)
    info_xml = (
        "<EntityReturnInfo><EntityId>0</EntityId><DatabaseAction>None</DatabaseAction>"
        "<DuplicateStatus><Found>false</Found><Ignored>false</Ignored></DuplicateStatus>"
        f"<Message>{info}</Message></EntityReturnInfo>"
        if info is not None
        else ""
    )
    return envelope(
        f'<{operation}Response xmlns="{ATWS}"><{operation}Result>'
        f"<ReturnCode>{return_code}</ReturnCode><EntityResults>{entities}</EntityResults>"
        f"<EntityResultType>ticket</EntityResultType><Errors>{error_xml}</Errors>"
        f"<EntityReturnInfoResults>{info_xml}</EntityReturnInfoResults>"
        f"</{operation}Result></{operation}Response>"
    )


def fault_answer(code: str, message: str) -> str:
    """A SOAP 1.1 Fault (unqualified faultcode and faultstring, SOAP 1.1 §4.4)."""
    return envelope(
        f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{message}</faultstring>"
        "<detail/></soap:Fault>"
    )


CREATED = ticket_xml(
    128926,
    AccountID=("xsd:int", "29683414"),
    Status=("xsd:int", "1"),
    TicketNumber=("xsd:string", "T20180724.0001"),
    Title=("xsd:string", "CPU high"),
)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP call is faked; a registered answer that is never asked for fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def client(records: list[ApiCallRecord]) -> AutotaskSoapClient:
    return AutotaskSoapClient(
        LOOKUP, USER, SECRET, CODE, allowed_zone_hosts=["*.autotask.net"], recorder=records.append
    )


def soap_action(operation: str) -> dict[str, str]:
    return {"SOAPAction": f'"{ATWS}{operation}"'}


def add_zone(http: responses.RequestsMock, url: str = ZONE) -> responses.BaseResponse:
    return http.post(
        LOOKUP,
        body=zone_answer(url),
        content_type="text/xml; charset=utf-8",
        match=[matchers.header_matcher(soap_action("getZoneInfo"))],
    )


def add_answer(
    http: responses.RequestsMock, body: Any, status: int = 200, **kwargs: Any
) -> responses.BaseResponse:
    """The zone endpoint answers the next call with `body` (XML text, or an exception)."""
    if isinstance(body, Exception):
        return http.post(ZONE, body=body)
    return http.post(
        ZONE, body=body, status=status, content_type="text/xml; charset=utf-8", **kwargs
    )


def sent(http: responses.RequestsMock, index: int) -> etree._Element:
    """The envelope of the `index`th request, parsed."""
    body = http.calls[index].request.body
    assert isinstance(body, bytes)
    return etree.fromstring(body)


def body_of(http: responses.RequestsMock, index: int) -> etree._Element:
    """The operation element inside the `index`th request's soap:Body."""
    body = sent(http, index).find(f"{{{SOAP_ENV}}}Body")
    assert body is not None
    return body[0]


def q(name: str) -> str:
    return f"{{{ATWS}}}{name}"


def new_ticket() -> SoapEntity:
    return SoapEntity("Ticket", {"AccountID": 29683414, "Title": "CPU high", "Status": 1})


# -- zone lookup ---------------------------------------------------------------------------------


def test_zone_is_looked_up_once_for_many_calls(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    zone = add_zone(http)
    query = add_answer(http, atws_answer("query"))
    for _ in range(3):
        assert client.query(TICKET_QUERY) == []
    assert zone.call_count == 1
    assert query.call_count == 3
    assert client.zone_url() == ZONE


def test_a_lookup_names_the_database_by_its_ci(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    told: list[ZoneAnswer] = []
    client.on_zone = told.append
    add_zone(http)
    client.zone_url()
    assert told == [ZoneAnswer(ZONE, "30049")]  # getZoneInfo's <CI> (autotask-api.md §10)


def test_a_lookup_without_a_ci_names_no_database(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    told: list[ZoneAnswer] = []
    client.on_zone = told.append
    answer = zone_answer().replace("<CI>30049</CI>", "")
    http.post(LOOKUP, body=answer, content_type="text/xml; charset=utf-8")
    client.zone_url()
    assert told == [ZoneAnswer(ZONE, None)]


def test_zone_is_looked_up_again_once_its_ttl_has_passed(http: responses.RequestsMock) -> None:
    now = [0.0]
    client = AutotaskSoapClient(LOOKUP, USER, SECRET, CODE, zone_ttl=60, clock=lambda: now[0])
    zone = add_zone(http)
    add_answer(http, atws_answer("query"))
    client.query(TICKET_QUERY)
    now[0] = 59
    client.query(TICKET_QUERY)
    assert zone.call_count == 1
    now[0] = 121
    client.query(TICKET_QUERY)
    assert zone.call_count == 2


def test_zone_lookup_sends_the_username_and_no_credentials(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    # getZoneInfo "does not require authentication or a tracking identifier" (§10).
    add_zone(http)
    client.zone_url()
    request = http.calls[0].request
    assert "Authorization" not in request.headers
    assert sent(http, 0).find(f"{{{SOAP_ENV}}}Header") is None
    operation = body_of(http, 0)
    assert operation.tag == q("getZoneInfo")
    assert operation.findtext(q("UserName")) == USER
    data = request.body
    assert isinstance(data, bytes)
    assert SECRET.encode() not in data and CODE.encode() not in data


def test_negative_error_code_from_zone_lookup_is_an_auth_error(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    # "a negative ErrorCode" means the lookup failed (OFFICIAL GetZoneInfoCall.htm, §10).
    http.post(LOOKUP, body=zone_answer(url="", error_code=-1))
    with pytest.raises(TargetAuthError, match="ErrorCode -1") as caught:
        client.query(TICKET_QUERY)
    assert caught.value.retryable is False
    assert len(http.calls) == 1


@pytest.mark.parametrize(
    "zone_url",
    [
        "https://evil.example.com/ATServices/1.6/atws.asmx",
        "https://autotask.net.evil.example.com/ATServices/1.6/atws.asmx",
        "http://webservices3.autotask.net/ATServices/1.6/atws.asmx",
        "https://user:pw@webservices3.autotask.net/ATServices/1.6/atws.asmx",
        "https://169.254.169.254/latest/",
    ],
    ids=["other host", "lookalike suffix", "plain http", "user info", "cloud metadata"],
)
def test_zone_on_a_disallowed_host_is_refused_and_gets_no_credentials(
    http: responses.RequestsMock, client: AutotaskSoapClient, zone_url: str
) -> None:
    add_zone(http, url=zone_url)
    with pytest.raises(TargetRejected, match="refusing to call it"):
        client.create([new_ticket()])
    # The zone lookup is the only request made: nothing, least of all the secret, went out.
    assert [call.request.url for call in http.calls] == [LOOKUP]
    assert "Authorization" not in http.calls[0].request.headers


def test_http_zone_is_allowed_only_on_an_allowed_loopback_host(
    http: responses.RequestsMock,
) -> None:
    local = "http://127.0.0.1:8081/ATServices/1.6/atws.asmx"
    http.post(local, body=zone_answer(local))
    http.post(local, body=atws_answer("query"))
    assert (
        AutotaskSoapClient(local, USER, SECRET, CODE, allowed_zone_hosts=["127.0.0.1"]).query(
            TICKET_QUERY
        )
        == []
    )
    with pytest.raises(TargetRejected, match="not in the allowed zone hosts"):
        AutotaskSoapClient(local, USER, SECRET, CODE).query(TICKET_QUERY)


# -- headers and envelopes -----------------------------------------------------------------------


def test_every_call_posts_xml_with_soapaction_and_basic_auth(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(
        http,
        atws_answer("create", CREATED),
        match=[
            matchers.header_matcher(
                {
                    "Content-Type": "text/xml; charset=utf-8",
                    "SOAPAction": f'"{ATWS}create"',
                    "Authorization": BASIC,
                }
            )
        ],
    )
    add_answer(
        http,
        atws_answer("query"),
        match=[matchers.header_matcher({**soap_action("query"), "Authorization": BASIC})],
    )
    client.create([new_ticket()])
    client.query(TICKET_QUERY)


def test_envelope_carries_the_integration_code_and_validates_against_the_wsdl(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    client.create([new_ticket()])
    envelope = sent(http, 1)
    assert envelope.tag == f"{{{SOAP_ENV}}}Envelope"
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    assert header is not None
    [integrations] = header
    assert integrations.tag == q("AutotaskIntegrations")
    assert integrations.findtext(q("IntegrationCode")) == CODE
    schema = atws_schema()
    assert schema.validate(integrations), schema.error_log
    assert schema.validate(body_of(http, 1)), schema.error_log


def test_create_writes_id_then_fields_in_wsdl_order_with_xsi_types(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    entity = SoapEntity(
        "Ticket",
        {
            "ExternalID": "m-1",
            "Title": "CPU high",
            "DueDateTime": datetime(2030, 3, 21, 9, 30, tzinfo=UTC),
            "QueueID": None,
            "EstimatedHours": Decimal("1.50"),
            "AccountID": 29683414,
        },
    )
    created = client.create([entity])
    assert created == [
        {"id": 128926, "UserDefinedFields": {}, "AccountID": 29683414, "Status": 1}
        | {"TicketNumber": "T20180724.0001", "Title": "CPU high"}
    ]
    assert created[0].entity_type == "Ticket"
    [written] = body_of(http, 1).iterfind(f"{q('Entities')}/{q('Entity')}")
    assert written.get(f"{{{XSI}}}type") == "Ticket"
    assert [(etree.QName(c).localname, c.get(f"{{{XSI}}}type"), c.text) for c in written] == [
        ("id", None, "0"),
        ("AccountID", "xsd:int", "29683414"),
        ("DueDateTime", "xsd:dateTime", "2030-03-21T09:30:00Z"),
        ("EstimatedHours", "xsd:decimal", "1.50"),
        ("Title", "xsd:string", "CPU high"),
        ("ExternalID", "xsd:string", "m-1"),
    ]
    assert atws_schema().validate(body_of(http, 1))


def test_values_are_escaped_and_characters_xml_cannot_carry_are_replaced(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    hostile = "</Title><Injected>1</Injected> & ]]> <![CDATA[ bell\x07"
    client.create([SoapEntity("Ticket", {"Title": hostile})])
    [written] = body_of(http, 1).iterfind(f"{q('Entities')}/{q('Entity')}")
    assert written.findtext(q("Title")) == hostile.replace("\x07", "\ufffd")
    assert written.find(f".//{q('Injected')}") is None


def test_query_values_are_escaped_in_the_queryxml(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("query"))
    client.query(build_queryxml("Ticket", [("ExternalID", "equals", "a<b>&</field>")]))
    sxml = body_of(http, 1).findtext(q("sXML")) or ""
    queryxml = etree.fromstring(sxml)
    field = queryxml.find("query/field")
    assert field is not None and field.text == "ExternalID"
    assert field.find("expression").get("op") == "equals"  # type: ignore[union-attr]
    assert field.findtext("expression") == "a<b>&</field>"


def test_update_sends_every_field_back_with_the_type_it_was_read_with(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    read = ticket_xml(
        7,
        AccountID=("xsd:int", "29683414"),
        CreateDate=("xsd:dateTime", "2018-07-24T09:01:13.24-04:00"),
        EstimatedHours=("xsd:double", "1.5"),
        Priority=("xsd:short", "2"),
        Status=("xsd:int", "1"),
        TicketNumber=("xsd:string", "T20180724.0001"),
        ServiceLevelAgreementHasBeenMet=("xsd:boolean", "false"),
        ChangeInfoField1=("xsd:duration", "P1D"),
        NewerField=("xsd:long", "5"),
        ExternalID=("xsd:string", ""),
    )
    add_zone(http)
    add_answer(http, atws_answer("query", read))
    add_answer(http, atws_answer("update", ticket_xml(7)))
    [ticket] = client.query(build_queryxml("Ticket", [("id", "equals", 7)]))
    assert ticket["CreateDate"] == datetime.fromisoformat("2018-07-24T09:01:13.240-04:00")
    assert ticket["Priority"] == 2 and ticket["EstimatedHours"] == 1.5
    assert ticket["ServiceLevelAgreementHasBeenMet"] is False
    assert ticket["ChangeInfoField1"] == XsdValue("P1D", "xsd:duration")
    ticket["Status"] = 5
    ticket["Resolution"] = "Cleared."
    client.update([ticket])
    [written] = body_of(http, 2).iterfind(f"{q('Entities')}/{q('Entity')}")
    assert [(etree.QName(c).localname, c.get(f"{{{XSI}}}type"), c.text) for c in written] == [
        ("id", None, "7"),
        ("AccountID", "xsd:int", "29683414"),
        ("CreateDate", "xsd:dateTime", "2018-07-24T13:01:13.240Z"),
        ("EstimatedHours", "xsd:double", "1.5"),
        ("Priority", "xsd:short", "2"),
        ("Status", "xsd:int", "5"),
        ("TicketNumber", "xsd:string", "T20180724.0001"),
        ("ServiceLevelAgreementHasBeenMet", "xsd:boolean", "false"),
        ("Resolution", "xsd:string", "Cleared."),  # placed where the WSDL sequence wants it
        ("ChangeInfoField1", "xsd:duration", "P1D"),
        ("NewerField", "xsd:long", "5"),  # unknown to our WSDL copy: kept after its neighbour
        ("ExternalID", "xsd:string", None),
    ]


def test_wsdl_order_keeps_unknown_fields_after_their_neighbour() -> None:
    assert wsdl_order("Ticket", ["Title", "AccountID", "X", "Status"]) == [
        "AccountID",
        "X",
        "Status",
        "Title",
    ]
    assert wsdl_order("Unknown", ["b", "a"]) == ["b", "a"]


def test_field_order_is_the_wsdl_sequence() -> None:
    # The vendored WSDL starts with a newline before its XML declaration.
    wsdl = etree.fromstring(WSDL.read_bytes().lstrip())
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for entity, order in FIELD_ORDER.items():
        [complex_type] = wsdl.iterfind(f".//{xs}complexType[@name='{entity}']")
        names = [e.get("name") for e in complex_type.iterfind(f".//{xs}sequence/{xs}element")]
        assert tuple(names) == order


def test_more_than_200_entities_are_refused_before_any_call(
    client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    # "Any batch call must be 200 or less entities per call" (Batching_API_Calls.htm, §10).
    with pytest.raises(TargetRejected, match="at most 200"):
        client.create([new_ticket() for _ in range(201)])
    assert client.create([]) == []
    assert records == []


def test_answer_with_fewer_entities_than_sent_is_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        client.create([new_ticket(), new_ticket()])
    assert caught.value.ambiguous is True


# -- query and paging ----------------------------------------------------------------------------


def test_query_reads_values_by_their_xsi_type_and_udfs(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    entity = (
        '<Entity xsi:type="Ticket"><id>9137</id><UserDefinedFields><UserDefinedField>'
        "<Name>Alert ID</Name><Value>a-1</Value></UserDefinedField></UserDefinedFields>"
        '<AccountID xsi:type="xsd:int">29684280</AccountID>'
        '<DueDateTime xsi:type="xsd:dateTime">2018-07-26T09:00:00</DueDateTime>'
        '<Description xsi:nil="true"/>'
        "<Title>untyped</Title></Entity>"
    )
    add_zone(http)
    add_answer(http, atws_answer("query", entity))
    [ticket] = client.query(TICKET_QUERY)
    assert ticket == {
        "id": 9137,
        "UserDefinedFields": {"Alert ID": "a-1"},
        "AccountID": 29684280,
        "DueDateTime": datetime(2018, 7, 26, 9, 0),
        "Title": "untyped",
    }


def test_query_pages_beyond_500_by_repeating_with_id_above_the_last(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    # "query() will return a maximum of 500 records at once, sorted by their id value … repeat
    # the query and filter by id value > the previous maximum id" (QueryXML.htm, §10).
    first = "".join(ticket_xml(i) for i in range(1, 501))
    second = "".join(ticket_xml(i) for i in (501, 502, 503))
    add_zone(http)
    add_answer(http, atws_answer("query", first))
    add_answer(http, atws_answer("query", second))
    query = (
        "<queryxml><entity>Ticket</entity><query>"
        '<field>Title<expression op="equals">a</expression></field>'
        '<condition operator="OR"><field>Title<expression op="equals">b</expression></field>'
        "</condition></query></queryxml>"
    )
    found = client.query(query)
    assert [t["id"] for t in found] == list(range(1, 504))
    assert etree.fromstring(body_of(http, 1).findtext(q("sXML")) or "") is not None
    assert body_of(http, 1).findtext(q("sXML")) == query
    page_two = etree.fromstring(body_of(http, 2).findtext(q("sXML")) or "")
    assert page_two.findtext("entity") == "Ticket"
    [group, id_field] = page_two.find("query")  # type: ignore[misc]
    # The original conditions stay together, so their OR cannot swallow the id filter.
    assert group.tag == "condition" and len(group) == 2
    assert id_field.text == "id"
    assert id_field.find("expression").get("op") == "greaterthan"  # type: ignore[union-attr]
    assert id_field.findtext("expression") == "500"
    assert [(r.entity, r.records) for r in records] == [
        ("getZoneInfo", None),
        ("Ticket.query", 500),
        ("Ticket.query", 3),
    ]


def test_query_paging_that_does_not_advance_stops(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    same = "".join(ticket_xml(i) for i in range(1, 501))
    add_zone(http)
    add_answer(http, atws_answer("query", same))
    with pytest.raises(AutotaskUnavailable, match="did not advance"):
        client.query(TICKET_QUERY)


@pytest.mark.parametrize(
    "queryxml",
    ["<query/>", "not xml", "<!DOCTYPE q><queryxml><entity>Ticket</entity><query/></queryxml>"],
    ids=["wrong root", "not xml", "doctype"],
)
def test_unusable_queryxml_is_rejected_before_any_call(
    client: AutotaskSoapClient, queryxml: str
) -> None:
    with pytest.raises(TargetRejected, match="queryxml"):
        client.query(queryxml)


def test_threshold_and_usage_reads_the_message(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    message = (
        "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60; numberOfExternalRequest: 42;"
    )
    add_zone(http)
    add_answer(
        http,
        atws_answer("getThresholdAndUsageInfo", info=message),
        match=[matchers.header_matcher(soap_action("getThresholdAndUsageInfo"))],
    )
    assert client.threshold_and_usage() == {
        "ThresholdOfExternalRequest": 10000,
        "TimeframeOfLimitation": 60,
        "numberOfExternalRequest": 42,
    }


# -- error mapping: one test per answer ----------------------------------------------------------

UNAUTHORIZED = (
    "The HTTP request is unauthorized with client authentication scheme 'Basic'. The"
    " authentication header received from the server was"
    " 'Basic Realm=\"webservices3.autotask.net\"'"
)


def test_401_looks_the_zone_up_again_once_then_is_an_auth_error(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    zone = add_zone(http)
    call = http.post(ZONE, status=401, body=UNAUTHORIZED, content_type="text/plain")
    with pytest.raises(TargetAuthError) as caught:
        client.query(TICKET_QUERY)
    assert zone.call_count == 2
    assert call.call_count == 1  # same zone: repeating the call cannot help
    assert caught.value.retryable is False
    assert caught.value.response == {"status": 401, "body": UNAUTHORIZED}


def test_401_after_the_database_moved_zone_retries_there(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    moved = "https://webservices14.autotask.net/ATServices/1.6/atws.asmx"
    http.post(LOOKUP, body=zone_answer(ZONE))
    http.post(LOOKUP, body=zone_answer(moved))
    http.post(ZONE, status=401, body=UNAUTHORIZED)
    http.post(moved, body=atws_answer("query"))
    assert client.query(TICKET_QUERY) == []
    assert client.zone_url() == moved


def test_return_code_minus_one_is_rejected_with_the_messages(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    message = "Value does not reference an existing entity for companyID . "
    answer = atws_answer("create", errors=(message,), return_code=-1)
    add_zone(http)
    add_answer(http, answer)
    with pytest.raises(TargetRejected) as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is False
    assert "ReturnCode -1" in str(caught.value) and message.strip() in str(caught.value)
    assert caught.value.response == {"status": 200, "body": answer}


@pytest.mark.parametrize(
    "message",
    ["IntegrationCode is invalid.", "Integration code required with this version of the API"],
)
def test_invalid_integration_code_is_an_auth_error(
    http: responses.RequestsMock, client: AutotaskSoapClient, message: str
) -> None:
    # python-atws #64 and autotask-php #174 (autotask-api.md §10).
    add_zone(http)
    add_answer(http, atws_answer("create", errors=(message,), return_code=-1))
    with pytest.raises(TargetAuthError, match="IntegrationCode|Integration code") as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is False


USAGE = "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60; numberOfExternalRequest: 1;"


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            atws_answer(
                "getThresholdAndUsageInfo", errors=("Something went wrong",), return_code=-1
            ),
            TargetAuthError,
        ),
        (atws_answer("getThresholdAndUsageInfo", info=USAGE), TargetRejected),
    ],
    ids=["check refused too: credentials", "check passes: the request itself"],
)
def test_a_refusal_that_names_no_field_checks_the_credentials(
    http: responses.RequestsMock, client: AutotaskSoapClient, check: str, expected: type
) -> None:
    # A tenant may say no more than "Something went wrong" (autotask-api.md §14), for a bad
    # tracking identifier as for a bad entity; getThresholdAndUsageInfo tells them apart.
    add_zone(http)
    add_answer(http, atws_answer("create", errors=("Something went wrong",), return_code=-1))
    add_answer(
        http, check, match=[matchers.header_matcher(soap_action("getThresholdAndUsageInfo"))]
    )
    with pytest.raises(TargetError) as caught:
        client.create([new_ticket()])
    assert isinstance(caught.value, expected)
    assert caught.value.retryable is False
    assert "Something went wrong" in str(caught.value)


def test_a_required_field_refusal_is_explained_without_a_credentials_check(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    message = "QueueID is required.; on record number [1]."
    add_answer(http, atws_answer("create", errors=(message,), return_code=-1))
    with pytest.raises(TargetRejected) as caught:
        client.create([new_ticket()])
    assert "Autotask requires QueueID for tickets of this category: set a queue" in str(
        caught.value
    )


def test_fault_with_429_is_rate_limited_and_honours_retry_after(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    message = "thread threshold of 3 threads has been exceeded"
    add_answer(
        http, fault_answer("soap:Client", message), status=429, headers={"Retry-After": "17"}
    )
    with pytest.raises(TargetRateLimited) as caught:
        client.query(TICKET_QUERY)
    assert caught.value.retryable is True
    assert caught.value.retry_after == 17.0
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (500, "Itgenatr005: thread threshold of 3 threads exceeded"),
        (503, "The request threshold of 10000 requests per 60 minutes has been exceeded"),
    ],
    ids=["thread threshold at 500", "hourly threshold at 503"],
)
def test_threshold_text_on_any_status_is_rate_limited(
    http: responses.RequestsMock, client: AutotaskSoapClient, status: int, message: str
) -> None:
    add_zone(http)
    add_answer(http, fault_answer("soap:Server", message), status=status)
    with pytest.raises(TargetRateLimited):
        client.query(TICKET_QUERY)


def test_fault_503_is_retryable_and_not_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    answer = fault_answer("soap:Server", "Sandbox fault injection: HTTP 503.")
    add_zone(http)
    add_answer(http, answer, status=503)
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert isinstance(caught.value, TargetUnavailable)
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.response == {"status": 503, "body": answer}


def test_server_fault_500_on_a_create_is_retryable_and_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, fault_answer("soap:Server", "Server was unable to process request."), 500)
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True


def test_client_fault_is_rejected_not_retried(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    # SOAP 1.1 §4.4.1: a Client fault "should not be resent without change".
    add_zone(http)
    add_answer(http, fault_answer("soap:Client", "Server was unable to read request."), 500)
    with pytest.raises(TargetRejected) as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is False


def test_gateway_page_keeps_the_first_2000_characters(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    http.post(ZONE, status=502, body="<html>" + "x" * 5000 + "</html>", content_type="text/html")
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert caught.value.ambiguous is True
    assert caught.value.response is not None
    assert len(str(caught.value.response["body"])) == 2000


def test_read_timeout_is_retryable_and_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(AutotaskUnavailable, match="outcome unknown") as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True
    assert isinstance(caught.value.__cause__, requests.exceptions.ReadTimeout)


def test_connection_dropped_after_sending_is_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    # What requests raises when the server closes the socket without answering.
    dropped = requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
    )
    add_zone(http)
    add_answer(http, dropped)
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True


def test_connection_refused_is_retryable_and_certainly_not_applied(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    refused = requests.exceptions.ConnectionError(
        MaxRetryError(None, ZONE, NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    )
    add_zone(http)
    add_answer(http, refused)
    with pytest.raises(AutotaskUnavailable, match="request not sent") as caught:
        client.create([new_ticket()])
    assert caught.value.retryable is True
    assert caught.value.ambiguous is False


def test_connect_timeout_is_retryable_and_not_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert caught.value.ambiguous is False


def test_redirect_is_not_followed(http: responses.RequestsMock, client: AutotaskSoapClient) -> None:
    add_zone(http)
    http.post(ZONE, status=302, body="", headers={"Location": "https://evil.example.com/collect"})
    with pytest.raises(TargetRejected, match="not followed") as caught:
        client.query(TICKET_QUERY)
    assert caught.value.retryable is False
    assert len(http.calls) == 2  # the Location was never requested


_QUERY_BODY = (
    f'<queryResponse xmlns="{ATWS}"><queryResult><ReturnCode>1</ReturnCode><EntityResults>'
    '<Entity xsi:type="Ticket"><id>1</id><Title xsi:type="xsd:string">&x;</Title></Entity>'
    "</EntityResults></queryResult></queryResponse>"
)
_NS = f'xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
HOSTILE_ANSWERS = {
    "xxe file": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f"<soap:Envelope {_NS}><soap:Body>{_QUERY_BODY}</soap:Body></soap:Envelope>",
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l "lol">'
    + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)).replace(
        "&l0;", "&l;"
    )
    + '<!ENTITY x "&l9;">]>'
    f"<soap:Envelope {_NS}><soap:Body>{_QUERY_BODY}</soap:Body></soap:Envelope>",
    "plain doctype": "<!DOCTYPE soap:Envelope>"
    f"<soap:Envelope {_NS}><soap:Body>{_QUERY_BODY.replace('&x;', 'ok')}</soap:Body>"
    "</soap:Envelope>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ANSWERS))
def test_answer_with_a_doctype_is_refused_and_nothing_is_expanded(
    http: responses.RequestsMock, client: AutotaskSoapClient, name: str
) -> None:
    add_zone(http)
    add_answer(http, HOSTILE_ANSWERS[name])
    with pytest.raises(AutotaskUnavailable, match="unexpected answer") as caught:
        client.query(TICKET_QUERY)
    assert caught.value.ambiguous is False  # a read: nothing was applied
    assert "root:" not in str(caught.value) and "lollol" not in str(caught.value)


def test_unreadable_answer_to_a_create_leaves_its_outcome_unknown(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, "<html>maintenance</html>")
    with pytest.raises(AutotaskUnavailable) as caught:
        client.create([new_ticket()])
    assert caught.value.ambiguous is True
    assert caught.value.response == {"status": 200, "body": "<html>maintenance</html>"}


@pytest.mark.parametrize(
    ("status", "messages", "fault_code", "expected"),
    [
        (200, ["title is required.; on record number [1]."], None, TargetRejected),
        (200, ["IntegrationCode is invalid."], None, TargetAuthError),
        (200, ["thread threshold of 3 threads has been exceeded"], None, TargetRateLimited),
        (401, [], None, TargetAuthError),
        (429, [], "soap:Client", TargetRateLimited),
        (500, ["Server was unable to read request."], "soap:Client", TargetRejected),
        (500, ["boom"], "soap:Server", TargetUnavailable),
        (503, [], "soap:Server", TargetUnavailable),
        (301, [], None, TargetRejected),
        (404, [], None, TargetRejected),
        (408, [], None, TargetUnavailable),
    ],
)
def test_classification_table(
    status: int, messages: list[str], fault_code: str | None, expected: type
) -> None:
    kind, _ = classify_failure(status, messages, fault_code=fault_code)
    assert kind is expected


# -- secrets and the activity record -------------------------------------------------------------


def scenario_401(http: responses.RequestsMock) -> None:
    add_zone(http)
    http.post(ZONE, status=401, body=UNAUTHORIZED)


def scenario_echoing_fault(http: responses.RequestsMock) -> None:
    # A server that repeats our credentials back must not leak them through us.
    add_zone(http)
    add_answer(http, fault_answer("soap:Server", f"bad {SECRET} {CODE} {BASIC}"), status=500)


def scenario_echoing_atws_error(http: responses.RequestsMock) -> None:
    add_zone(http)
    add_answer(http, atws_answer("query", errors=(f"code {CODE} secret {SECRET}",), return_code=-1))


def scenario_timeout(http: responses.RequestsMock) -> None:
    add_zone(http)
    add_answer(http, requests.exceptions.ReadTimeout(f"timeout {SECRET}"))


@pytest.mark.parametrize(
    "scenario",
    [scenario_401, scenario_echoing_fault, scenario_echoing_atws_error, scenario_timeout],
    ids=["401", "fault echoing secrets", "ATWSError echoing secrets", "read timeout"],
)
def test_secret_code_and_basic_token_never_appear_in_errors_or_records(
    http: responses.RequestsMock,
    client: AutotaskSoapClient,
    records: list[ApiCallRecord],
    scenario: Any,
) -> None:
    scenario(http)
    with pytest.raises(TargetError) as caught:
        client.query(TICKET_QUERY)
    seen = " ".join(
        [str(caught.value), repr(caught.value.response), repr(client), *map(repr, records)]
    )
    assert records
    assert SECRET not in seen
    assert CODE not in seen
    assert BASIC.split()[1] not in seen


def test_recorder_gets_one_record_per_call(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    add_answer(http, atws_answer("query", ticket_xml(1)))
    add_answer(http, atws_answer("create", errors=(DESCRIPTION_REQUIRED,), return_code=-1))
    add_answer(http, requests.exceptions.ReadTimeout())
    client.create([new_ticket()])
    client.query(TICKET_QUERY)
    with pytest.raises(TargetRejected):
        client.create([SoapEntity("TicketNote", {"TicketID": 1})])
    with pytest.raises(AutotaskUnavailable):
        client.update([new_ticket()])
    summary = [(r.method, r.entity, r.http_status, r.records) for r in records]
    assert summary == [
        ("POST", "getZoneInfo", 200, None),
        ("POST", "Ticket.create", 200, 1),
        ("POST", "Ticket.query", 200, 1),
        ("POST", "TicketNote.create", 200, 0),
        ("POST", "Ticket.update", None, None),
    ]
    assert [r.error is None for r in records] == [True, True, True, False, False]
    assert "Description is required" in (records[3].error or "")
    assert "outcome unknown" in (records[4].error or "")
    assert all(r.execution_ms >= 0 and r.at.tzinfo is not None for r in records)


# -- send_envelope: a rendered delivery request ---------------------------------------------------


def rendered_envelope(
    operation: str = "create",
    entity: str = '<Entity xsi:type="Ticket"><id>0</id><AccountID>29683414</AccountID>'
    "<Status>1</Status><Title>CPU high</Title></Entity>",
    header: str | None = None,
) -> str:
    """A rendered request body as payload_templates/soap writes them (fields untyped)."""
    if header is None:
        header = (
            f'<AutotaskIntegrations xmlns="{ATWS}"><IntegrationCode>{CODE}</IntegrationCode>'
            "</AutotaskIntegrations>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap:Header>{header}</soap:Header><soap:Body>"
        f'<{operation} xmlns="{ATWS}"><Entities>{entity}</Entities></{operation}>'
        "</soap:Body></soap:Envelope>"
    )


def request_for(
    body: str,
    *,
    url: str = ZONE,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    action: RequestAction = RequestAction.CREATE,
) -> OutboundRequest:
    return OutboundRequest(
        action=action, method=method, url=url, body=body, body_format="xml", headers=headers or {}
    )


def send(client: AutotaskSoapClient, request: OutboundRequest) -> TargetResponse:
    return client.send_envelope(request, parse_envelope(request.body))


def test_send_envelope_posts_it_with_basic_auth_and_the_operations_soapaction(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    add_zone(http)
    add_answer(
        http,
        atws_answer("create", CREATED),
        match=[
            matchers.header_matcher(
                {
                    "Content-Type": "text/xml; charset=utf-8",
                    "SOAPAction": f'"{ATWS}create"',
                    "Authorization": BASIC,
                    "X-Trace": "abc",
                }
            )
        ],
    )
    client.zone_url()
    response = send(client, request_for(rendered_envelope(), headers={"X-Trace": "abc"}))
    assert response.status == 200
    assert response.ticket == TicketRef(128926, "T20180724.0001", 1)
    assert etree.tostring(sent(http, 1)) == etree.tostring(
        etree.fromstring(rendered_envelope().encode())
    )
    schema = atws_schema()
    assert schema.validate(body_of(http, 1)), schema.error_log
    headers = response.sent["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == REDACTED
    assert headers["X-Trace"] == "abc"
    assert (records[-1].method, records[-1].entity, records[-1].records) == (
        "POST",
        "Ticket.create",
        1,
    )


def test_send_envelope_adds_the_integration_code_when_the_envelope_has_none(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    add_answer(http, atws_answer("create", CREATED))
    client.zone_url()
    send(client, request_for(rendered_envelope(header="")))
    partner = (
        f'<AutotaskIntegrations xmlns="{ATWS}"><PartnerID>p</PartnerID></AutotaskIntegrations>'
    )
    send(client, request_for(rendered_envelope(header=partner)))
    schema = atws_schema()
    for index in (1, 2):
        header = sent(http, index).find(f"{{{SOAP_ENV}}}Header")
        assert header is not None
        [integrations] = header
        assert integrations.findtext(q("IntegrationCode")) == CODE
        assert schema.validate(integrations), schema.error_log  # PartnerID, then the code
    assert [etree.QName(e).localname for e in integrations] == ["PartnerID", "IntegrationCode"]


def test_send_envelope_keeps_the_admins_integration_code(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", CREATED))
    client.zone_url()
    own = (
        f'<AutotaskIntegrations xmlns="{ATWS}">'
        "<IntegrationCode>OTHER</IntegrationCode></AutotaskIntegrations>"
    )
    send(client, request_for(rendered_envelope(header=own)))
    assert sent(http, 1).findtext(f".//{q('IntegrationCode')}") == "OTHER"


def test_admin_headers_cannot_override_basic_auth_or_soapaction(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(
        http,
        atws_answer("create", CREATED),
        match=[
            matchers.header_matcher(
                {"Authorization": BASIC, "SOAPAction": f'"{ATWS}create"', "X-Ok": "1"}
            )
        ],
    )
    client.zone_url()
    admin = {"AUTHORIZATION": "Basic eDp5", "soapAction": f'"{ATWS}delete"', "X-Ok": "1"}
    send(client, request_for(rendered_envelope(), headers=admin))


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/ATServices/1.6/atws.asmx",
        "http://webservices3.autotask.net/ATServices/1.6/atws.asmx",
        "https://webservices3.autotask.net/ATServices/1.6/atws.asmx?wsdl",
    ],
    ids=["other host", "plain http", "query"],
)
def test_send_envelope_to_a_url_outside_the_allowed_hosts_makes_no_call(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord], url: str
) -> None:
    with pytest.raises(TargetRejected, match="request URL"):
        send(client, request_for(rendered_envelope(), url=url))
    assert len(http.calls) == 0 and records == []


def test_send_envelope_must_be_posted(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    with pytest.raises(TargetRejected, match="POSTed"):
        send(client, request_for(rendered_envelope(), method="PUT"))
    assert len(http.calls) == 0


def test_send_envelope_does_not_follow_a_redirect(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    http.post(ZONE, status=302, body="", headers={"Location": "https://evil.example.com/x"})
    client.zone_url()
    with pytest.raises(TargetRejected, match="not followed"):
        send(client, request_for(rendered_envelope()))
    assert len(http.calls) == 2


def test_send_envelope_429_is_rate_limited_with_retry_after(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(
        http,
        fault_answer("soap:Client", "thread threshold of 3 threads has been exceeded"),
        status=429,
        headers={"Retry-After": "12"},
    )
    client.zone_url()
    with pytest.raises(TargetRateLimited) as caught:
        send(client, request_for(rendered_envelope()))
    assert caught.value.retry_after == 12.0


@pytest.mark.parametrize(
    ("operation", "ambiguous"), [("create", True), ("update", True), ("query", False)]
)
def test_send_envelope_unreadable_2xx_is_ambiguous_for_writes_only(
    http: responses.RequestsMock, client: AutotaskSoapClient, operation: str, ambiguous: bool
) -> None:
    add_zone(http)
    add_answer(http, "<html>maintenance</html>")
    client.zone_url()
    body = rendered_envelope(operation)
    if operation == "query":
        body = body.replace("<Entities>", "<sXML>").replace("</Entities>", "</sXML>")
        body = body.replace(body[body.index("<sXML>") + 6 : body.index("</sXML>")], "")
    with pytest.raises(AutotaskUnavailable) as caught:
        send(client, request_for(body))
    assert caught.value.ambiguous is ambiguous


def test_send_envelope_server_fault_on_a_create_is_ambiguous(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, fault_answer("soap:Server", "Server was unable to process request."), 500)
    client.zone_url()
    with pytest.raises(AutotaskUnavailable) as caught:
        send(client, request_for(rendered_envelope()))
    assert caught.value.retryable is True
    assert caught.value.ambiguous is True


def test_send_envelope_return_code_minus_one_is_rejected(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    message = "Title is required.; on record number [1]."
    add_zone(http)
    add_answer(http, atws_answer("create", errors=(message,), return_code=-1))
    client.zone_url()
    with pytest.raises(TargetRejected, match=re.escape(message)):
        send(client, request_for(rendered_envelope()))
    assert records[-1].records == 0


def test_send_envelope_after_the_database_moved_zone_goes_to_the_new_zone(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    moved = "https://webservices14.autotask.net/ATServices/1.6/atws.asmx"
    http.post(LOOKUP, body=zone_answer(ZONE))
    http.post(LOOKUP, body=zone_answer(moved))
    http.post(ZONE, status=401, body=UNAUTHORIZED)
    http.post(moved, body=atws_answer("create", CREATED))
    client.zone_url()
    response = send(client, request_for(rendered_envelope()))
    assert response.sent["url"] == moved
    assert response.ticket is not None and response.ticket.ticket_id == 128926


def test_send_envelope_never_shows_the_secret_the_code_or_the_basic_token(
    http: responses.RequestsMock, client: AutotaskSoapClient, records: list[ApiCallRecord]
) -> None:
    token = BASIC.split()[1]
    echo = ticket_xml(5, Title=("xsd:string", f"{SECRET} {CODE} {token}"))
    add_zone(http)
    add_answer(http, atws_answer("create", echo))
    add_answer(http, fault_answer("soap:Server", f"bad {SECRET} {token}"), 500)
    client.zone_url()
    response = send(client, request_for(rendered_envelope()))
    with pytest.raises(TargetError) as caught:
        send(client, request_for(rendered_envelope()))
    seen = " ".join(
        [repr(response), str(caught.value), repr(caught.value.response), *map(repr, records)]
    )
    for secret in (SECRET, CODE, token):
        assert secret not in seen
    # Both the envelope sent and the answer stay XML, with the marker where a secret was.
    sent_body = etree.fromstring(str(response.sent["body"]).encode())
    assert sent_body.findtext(f".//{q('IntegrationCode')}") == REDACTED
    answer = etree.fromstring(response.body.encode())
    assert answer.findtext(f".//{q('Title')}") == f"{REDACTED} {REDACTED} {REDACTED}"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not xml",
        '<!DOCTYPE x [<!ENTITY e "e">]><x/>',
        '<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"/>',
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body/></soap:Envelope>',
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><create/></soap:Body></soap:Envelope>',
    ],
    ids=["empty", "not xml", "doctype", "soap 1.2", "empty body", "not atws"],
)
def test_parse_envelope_refuses_what_is_not_an_atws_request(body: str) -> None:
    with pytest.raises(TargetRejected, match="SOAP"):
        parse_envelope(body)


def test_parse_envelope_names_the_operation_and_its_entity() -> None:
    envelope = parse_envelope(rendered_envelope("update"))
    assert (envelope.name, envelope.entity()) == ("update", "Ticket")
    query = (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><query xmlns="{ATWS}"><sXML>'
        "&lt;queryxml&gt;&lt;entity&gt;TicketNote&lt;/entity&gt;&lt;query/&gt;&lt;/queryxml&gt;"
        "</sXML></query></soap:Body></soap:Envelope>"
    )
    assert (parse_envelope(query).name, parse_envelope(query).entity()) == ("query", "TicketNote")


# -- merging a template's fields onto a queried entity (SOAP update replaces the entity) --------


def queried_ticket() -> SoapEntity:
    return SoapEntity(
        "Ticket",
        {
            "id": 7,
            "UserDefinedFields": {"Site": "HQ", "Rack": "R1"},
            "AccountID": 29683414,
            "Priority": 2,
            "QueueID": 29683481,
            "Status": 1,
            "TicketNumber": "T20240101.0001",
            "Title": "Disk full",
            "Resolution": "old",
            "Odd": XsdValue("P1D", "xsd:duration"),
        },
        xsd_types={
            "AccountID": "xsd:int",
            "Priority": "xsd:int",
            "QueueID": "xsd:long",
            "Status": "xsd:int",
            "TicketNumber": "xsd:string",
            "Title": "xsd:string",
            "Resolution": "xsd:string",
        },
    )


def template_entity(fields: str) -> etree._Element:
    return etree.fromstring(
        f'<Entity xmlns="{ATWS}" xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        f' xsi:type="Ticket"><id>7</id>{fields}</Entity>'
    )


def test_merge_applies_the_templates_fields_with_the_queried_types() -> None:
    element = template_entity(
        "<Status> 5 </Status><Title> Disk full, fixed </Title>"
        '<DueDateTime xsi:type="xsd:dateTime">2030-01-01T00:00:00Z</DueDateTime>'
        "<Source>8</Source><Odd>P2D</Odd>"
        '<Resolution xsi:nil="true"/>'
        "<UserDefinedFields><UserDefinedField><Name>Rack</Name><Value>R2</Value>"
        "</UserDefinedField></UserDefinedFields>"
    )
    merged = merge_entity(queried_ticket(), element)
    holder = etree.Element(q("Entities"), nsmap={None: ATWS})
    replace_entity(etree.SubElement(holder, q("Entity")), merged)
    [written] = holder
    fields = {
        etree.QName(e).localname: (e.text, e.get(f"{{{XSI}}}type"))
        for e in written
        if etree.QName(e).localname != "UserDefinedFields"
    }
    assert fields == {
        "id": ("7", None),
        "AccountID": ("29683414", "xsd:int"),  # not in the template: kept as queried
        "DueDateTime": ("2030-01-01T00:00:00Z", "xsd:dateTime"),  # the template's type
        "Priority": ("2", "xsd:int"),
        "QueueID": ("29683481", "xsd:long"),
        "Source": ("8", None),  # new and untyped: as the template wrote it
        "Status": ("5", "xsd:int"),  # the template wins, with the type the query gave
        "TicketNumber": ("T20240101.0001", "xsd:string"),
        "Title": (" Disk full, fixed ", "xsd:string"),  # text kept exactly
        "Odd": ("P2D", "xsd:duration"),
    }  # Resolution: xsi:nil clears it
    udfs = {
        u.findtext(q("Name")): u.findtext(q("Value")) for u in written.iter(q("UserDefinedField"))
    }
    assert udfs == {"Site": "HQ", "Rack": "R2"}
    assert [etree.QName(e).localname for e in written][:3] == [
        "id",
        "UserDefinedFields",
        "AccountID",
    ]
    assert wsdl_order("Ticket", list(fields)[1:]) == list(fields)[1:]  # written in WSDL order


def test_replace_entity_declares_the_xsd_prefix_when_the_envelope_does_not() -> None:
    envelope = parse_envelope(
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}"><soap:Body>'
        f'<update xmlns="{ATWS}"><Entities><Entity xsi:type="Ticket"><id>7</id>'
        "<Status>5</Status></Entity></Entities></update></soap:Body></soap:Envelope>"
    )
    [element] = envelope.entities()
    replace_entity(element, merge_entity(queried_ticket(), element))
    [written] = envelope.entities()
    assert written.nsmap["xsd"] == "http://www.w3.org/2001/XMLSchema"
    assert entity_id(written) == 7
    assert written.findtext(q("Status")) == "5"


@pytest.mark.parametrize("id_text", [None, "", "0", "-3", "x"])
def test_entity_id_refuses_an_entity_that_names_no_record(id_text: str | None) -> None:
    element = etree.Element(q("Entity"))
    if id_text is not None:
        etree.SubElement(element, q("id")).text = id_text
    with pytest.raises(TargetRejected, match="no usable id"):
        entity_id(element)


def test_an_answered_ticket_without_a_usable_status_does_not_fail_an_applied_create(
    http: responses.RequestsMock, client: AutotaskSoapClient
) -> None:
    add_zone(http)
    add_answer(http, atws_answer("create", ticket_xml(9, Status=("xsd:string", "open"))))
    client.zone_url()
    response = send(client, request_for(rendered_envelope()))
    assert response.ticket is None
    assert extract_ticket_id(response.body, "xml", DEFAULT_XML_ID_PATH, DEFAULT_NAMESPACES) == 9
