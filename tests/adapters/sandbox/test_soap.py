"""The sandbox's SOAP 1.6 face (ATWS): operations, error shapes, limits and XML hardening.

Every SOAP reply goes through `SoapClient.post`, which validates the element inside soap:Body
against the schema embedded in the vendored WSDL, so a reply shape the real API could not produce
fails the test that provoked it.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.sandbox.entities import SOAP_FIELD_ORDER
from connector.safe_xml import hardened_parser
from tests.conftest import SPECS, RestClient

ATWS = "http://autotask.net/ATWS/v1_6/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL = SPECS / "atws-v1_6.trepidity-autotask_ruby.wsdl"

CONTOSO = 29683414


def _parser() -> etree.XMLParser:
    """The hardened parser the sandbox uses, for reading its replies and the WSDL."""
    return hardened_parser()


@cache
def atws_schema() -> etree.XMLSchema:
    """The xs:schema inside the WSDL's wsdl:types, re-parsed so it keeps inherited namespaces."""
    # The vendored WSDL starts with a newline before its XML declaration.
    wsdl = etree.fromstring(WSDL.read_bytes().lstrip(), _parser())
    schema = wsdl.find(f"{{{WSDL_NS}}}types/{{{XSD}}}schema")
    assert schema is not None
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema), _parser()))


def q(name: str) -> str:
    """The ATWS-qualified tag for `name`."""
    return f"{{{ATWS}}}{name}"


@dataclass
class Reply:
    """One HTTP answer of the SOAP endpoint, with its parsed Body content when it is XML."""

    status: int
    text: str
    headers: Any
    content: etree._Element | None = None

    @property
    def result(self) -> etree._Element:
        """The `{op}Result` element."""
        assert self.content is not None, self.text
        return self.content[0]

    @property
    def return_code(self) -> int:
        """The ATWSResponse ReturnCode (1 is success)."""
        return int(self.result.findtext(q("ReturnCode")) or "0")

    @property
    def errors(self) -> list[str]:
        """The ATWSError messages."""
        return [
            m.text or ""
            for m in self.result.iter(q("Message"))
            if m.getparent().tag == q("ATWSError")
        ]

    @property
    def entities(self) -> list[dict[str, str]]:
        """Each returned entity as {element name: text}, plus `_type` (its xsi:type)."""
        found = []
        for entity in self.result.iterfind(f"{q('EntityResults')}/{q('Entity')}"):
            row = {
                etree.QName(c).localname: c.text or ""
                for c in entity
                if c.tag != q("UserDefinedFields")
            }
            row["_type"] = entity.get(f"{{{XSI}}}type", "")
            found.append(row)
        return found

    @property
    def ids(self) -> list[int]:
        """The ids of the returned entities, in order."""
        return [int(e["id"]) for e in self.entities]

    @property
    def fault(self) -> tuple[str, str]:
        """(faultcode, faultstring) of a soap:Fault reply."""
        assert self.content is not None and self.content.tag == f"{{{SOAP_ENV}}}Fault", self.text
        return self.content.findtext("faultcode") or "", self.content.findtext("faultstring") or ""


def check_reply(response: requests.Response) -> Reply:
    """Parse a SOAP reply and validate the element inside soap:Body against the WSDL schema."""
    reply = Reply(response.status_code, response.text, response.headers)
    if response.status_code == 401:
        assert response.headers["Content-Type"].startswith("text/plain")
        return reply
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    envelope = etree.fromstring(response.content, _parser())
    assert envelope.tag == f"{{{SOAP_ENV}}}Envelope"
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None and len(body) == 1
    reply.content = body[0]
    if reply.content.tag == f"{{{SOAP_ENV}}}Fault":
        # SOAP 1.1 §4.4: unqualified faultcode and faultstring; Faults answer HTTP 500 (or the
        # status a limit or injected fault chose).
        assert response.status_code >= 400
        assert [c.tag for c in reply.content][:2] == ["faultcode", "faultstring"]
        assert (reply.content.findtext("faultcode") or "").startswith("soap:")
        return reply
    assert response.status_code == 200
    schema = atws_schema()
    assert schema.validate(reply.content), f"{schema.error_log}\n{response.text}"
    return reply


class SoapClient:
    """Posts SOAP 1.1 envelopes to the sandbox; every reply passes through `check_reply`."""

    def __init__(self, server: SandboxServer, user: ApiUser) -> None:
        # Real clients use this casing; the sandbox matches paths case-insensitively.
        self.url = f"{server.url}ATServices/1.6/atws.asmx"
        self.user = user
        self.replies: list[Reply] = []

    def post(
        self,
        data: bytes,
        *,
        auth: tuple[str, str] | None = None,
        action: str = "",
    ) -> Reply:
        """POST raw bytes with HTTP Basic (the API user's unless `auth`) and check the reply."""
        response = requests.post(
            self.url,
            data=data,
            auth=auth or (self.user.username, self.user.secret),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ATWS}{action}"'},
            timeout=10,
        )
        reply = check_reply(response)
        self.replies.append(reply)
        return reply

    def call(
        self,
        operation: etree._Element,
        *,
        code: str | None = "",
        auth: tuple[str, str] | None = None,
    ) -> Reply:
        """Send `operation` in an envelope with the AutotaskIntegrations header (None: none)."""
        envelope = etree.Element(
            f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "xsi": XSI, "xsd": XSD}
        )
        if code is not None:
            header = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
            integrations = etree.SubElement(header, q("AutotaskIntegrations"), nsmap={None: ATWS})
            etree.SubElement(integrations, q("IntegrationCode")).text = (
                code or self.user.integration_code
            )
        etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(operation)
        data = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return self.post(data, auth=auth, action=etree.QName(operation).localname)

    def create(self, *entities: etree._Element, **kwargs: Any) -> Reply:
        """Call create with these entities."""
        return self.call(_write("create", entities), **kwargs)

    def update(self, *entities: etree._Element, **kwargs: Any) -> Reply:
        """Call update with these entities."""
        return self.call(_write("update", entities), **kwargs)

    def query(self, queryxml: str, **kwargs: Any) -> Reply:
        """Call query with `queryxml` as CDATA in sXML."""
        operation = etree.Element(q("query"), nsmap={None: ATWS})
        etree.SubElement(operation, q("sXML")).text = etree.CDATA(queryxml)
        return self.call(operation, **kwargs)

    def zone_info(self, username: str) -> Reply:
        """Call getZoneInfo without credentials or integration code."""
        operation = etree.Element(q("getZoneInfo"), nsmap={None: ATWS})
        etree.SubElement(operation, q("UserName")).text = username
        return self.call(operation, code=None, auth=("", ""))

    def threshold(self) -> Reply:
        """Call getThresholdAndUsageInfo."""
        return self.call(etree.Element(q("getThresholdAndUsageInfo"), nsmap={None: ATWS}))

    def create_ticket(self, **fields: Any) -> int:
        """Create one valid ticket (fields override) and return its id."""
        reply = self.create(ticket(**fields))
        assert reply.return_code == 1, reply.errors
        return reply.ids[0]


def _write(name: str, entities: tuple[etree._Element, ...]) -> etree._Element:
    operation = etree.Element(q(name), nsmap={None: ATWS})
    holder = etree.SubElement(operation, q("Entities"))
    for entity in entities:
        holder.append(entity)
    return operation


def entity(
    kind: str, entity_id: int = 0, udfs: dict[str, str] | None = None, **fields: Any
) -> etree._Element:
    """`<Entity xsi:type=kind>` with id, optional UDFs and fields (None values are left out)."""
    element = etree.Element(q("Entity"), nsmap={None: ATWS, "xsi": XSI})
    element.set(f"{{{XSI}}}type", kind)
    etree.SubElement(element, q("id")).text = str(entity_id)
    if udfs:
        holder = etree.SubElement(element, q("UserDefinedFields"))
        for name, value in udfs.items():
            udf = etree.SubElement(holder, q("UserDefinedField"))
            etree.SubElement(udf, q("Name")).text = name
            etree.SubElement(udf, q("Value")).text = value
    for name, value in fields.items():
        if value is not None:
            etree.SubElement(element, q(name)).text = str(value)
    return element


def ticket(entity_id: int = 0, udfs: dict[str, str] | None = None, **fields: Any) -> etree._Element:
    """A valid Ticket entity; `fields` override or (None) drop the defaults."""
    values: dict[str, Any] = {
        "AccountID": CONTOSO,
        "Title": "CPU high on srv01",
        "Status": 1,
        "Priority": 2,
    }
    values.update(fields)
    return entity("Ticket", entity_id, udfs, **values)


def note(ticket_id: int, **fields: Any) -> etree._Element:
    """A valid TicketNote entity for `ticket_id`."""
    values: dict[str, Any] = {
        "TicketID": ticket_id,
        "Title": "Update",
        "Description": "still firing",
        "NoteType": 1,
        "Publish": 1,
    }
    values.update(fields)
    return entity("TicketNote", **values)


def queryxml(entity_name: str, conditions: str) -> str:
    """A queryxml document for `entity_name` with these conditions."""
    return f"<queryxml><entity>{entity_name}</entity><query>{conditions}</query></queryxml>"


def field(name: str, op: str, value: str = "", *, udf: bool = False) -> str:
    """One `<field>` with one expression (`value` is inserted as markup, unescaped)."""
    attr = ' udf="true"' if udf else ""
    return f'<field{attr}>{name}<expression op="{op}">{value}</expression></field>'


@pytest.fixture
def soap(sandbox_server: SandboxServer, api_user: ApiUser) -> SoapClient:
    """A SOAP client for the running sandbox."""
    return SoapClient(sandbox_server, api_user)


# -- create ------------------------------------------------------------------------------------


def test_create_ticket_returns_entity_with_new_id(soap: SoapClient) -> None:
    reply = soap.create(
        ticket(
            Description="alert text",
            QueueID=29682833,
            DueDateTime="2018-07-26T09:00:00",
            ExternalID="alert-1",
        )
    )
    assert reply.return_code == 1
    assert reply.errors == []
    [created] = reply.entities
    assert created["_type"] == "Ticket"
    assert int(created["id"]) > 0
    assert created["Title"] == "CPU high on srv01"
    assert created["AccountID"] == str(CONTOSO)
    assert created["ExternalID"] == "alert-1"
    assert re.fullmatch(r"T\d{8}\.\d{4}", created["TicketNumber"])
    assert reply.result.findtext(q("EntityResultType")) == "ticket"
    info = reply.result.find(f"{q('EntityReturnInfoResults')}/{q('EntityReturnInfo')}")
    assert info is not None and info.findtext(q("EntityId")) == created["id"]


def test_create_fields_follow_wsdl_order_with_xsi_types(soap: SoapClient) -> None:
    reply = soap.create(ticket(Description="d", EstimatedHours="1.5"))
    element = reply.result.find(f"{q('EntityResults')}/{q('Entity')}")
    assert element is not None
    names = [etree.QName(c).localname for c in element]
    assert names[:2] == ["id", "UserDefinedFields"]
    order = SOAP_FIELD_ORDER["Ticket"]
    assert names[2:] == sorted(names[2:], key=order.index)
    types = {etree.QName(c).localname: c.get(f"{{{XSI}}}type") for c in element}
    assert types["AccountID"] == "xsd:int"
    assert types["Title"] == "xsd:string"
    assert types["CreateDate"] == "xsd:dateTime"


def test_create_is_visible_through_the_rest_face(
    soap: SoapClient, sandbox_server: SandboxServer
) -> None:
    ticket_id = soap.create_ticket(Title="made over SOAP")
    tickets = requests.get(f"{sandbox_server.url}_sandbox/tickets", timeout=10).json()
    assert [(t["id"], t["title"], t["companyID"]) for t in tickets] == [
        (ticket_id, "made over SOAP", CONTOSO)
    ]


def test_create_ticket_note(soap: SoapClient, sandbox: Sandbox) -> None:
    ticket_id = soap.create_ticket()
    reply = soap.create(note(ticket_id, Description="second alert"))
    assert reply.return_code == 1, reply.errors
    [created] = reply.entities
    assert created["_type"] == "TicketNote"
    assert created["TicketID"] == str(ticket_id)
    assert [n["description"] for n in sandbox.tickets_with_notes()[0]["notes"]] == ["second alert"]


def test_create_with_udfs_and_batch_of_two(soap: SoapClient) -> None:
    reply = soap.create(ticket(udfs={"Alert ID": "a-1"}), ticket(Title="second"))
    assert reply.return_code == 1, reply.errors
    assert len(reply.ids) == 2 and reply.ids[0] < reply.ids[1]
    udf = reply.result.find(f".//{q('UserDefinedField')}")
    assert (
        udf is not None
        and udf.findtext(q("Name")) == "Alert ID"
        and udf.findtext(q("Value")) == "a-1"
    )


# -- error shapes ------------------------------------------------------------------------------


def test_wrong_basic_secret_is_http_401(soap: SoapClient, sandbox: Sandbox) -> None:
    reply = soap.create(ticket(), auth=(soap.user.username, "wrong"))
    assert reply.status == 401
    assert reply.text.startswith(
        "The HTTP request is unauthorized with client authentication scheme 'Basic'"
    )
    assert reply.headers["WWW-Authenticate"].startswith('Basic Realm="127.0.0.1')
    assert sandbox.state.all("Tickets") == []


def test_unknown_basic_user_is_http_401(soap: SoapClient) -> None:
    assert soap.threshold().status == 200
    reply = soap.call(
        etree.Element(q("getThresholdAndUsageInfo"), nsmap={None: ATWS}),
        auth=("nobody@x.test", soap.user.secret),
    )
    assert reply.status == 401


@pytest.mark.parametrize("code", ["WRONGCODE", None])
def test_bad_or_missing_integration_code_is_return_code_minus_one(
    soap: SoapClient, sandbox: Sandbox, code: str | None
) -> None:
    reply = soap.create(ticket(), code=code)
    assert reply.status == 200
    assert reply.content is not None and reply.content.tag == q("createResponse")
    assert reply.return_code == -1
    assert reply.errors == ["IntegrationCode is invalid."]
    assert sandbox.state.all("Tickets") == []


def test_missing_title_is_a_validation_error(soap: SoapClient, sandbox: Sandbox) -> None:
    reply = soap.create(ticket(Title=None))
    assert reply.status == 200
    assert reply.return_code == -1
    assert reply.entities == []
    # Real wording (WYRE-AI/autotask-mcp PR #288, autotask-api.md §14), behind the batch prefix.
    assert any(m.endswith("title is required.; on record number [0].") for m in reply.errors), (
        reply.errors
    )
    assert sandbox.state.all("Tickets") == []


def test_unknown_account_is_a_validation_error(soap: SoapClient) -> None:
    reply = soap.create(ticket(AccountID=99))
    assert reply.return_code == -1
    assert any(
        m.endswith(
            "Reference value on field: companyID of type: Account does not exist or is invalid."
            " ; on record number [1]."
        )
        for m in reply.errors
    ), reply.errors


def test_one_bad_entity_fails_the_whole_batch(soap: SoapClient, sandbox: Sandbox) -> None:
    reply = soap.create(
        ticket(Title="good"), ticket(Title="bad", Priority=77), ticket(Title="good too")
    )
    assert reply.return_code == -1
    assert reply.errors and all(
        m.startswith("Error updating entity for record number [2].") for m in reply.errors
    )
    assert sandbox.state.all("Tickets") == []
    # Nothing half-done: the next ticket still gets the first id and ticket number.
    assert soap.create_ticket() == 128_926


def test_more_than_200_entities_is_refused(soap: SoapClient, sandbox: Sandbox) -> None:
    reply = soap.create(*(ticket(Title=f"t{i}") for i in range(201)))
    assert reply.return_code == -1
    assert "200 or less entities per call" in reply.errors[0]
    assert sandbox.state.all("Tickets") == []
    assert soap.create(*(ticket(Title=f"t{i}") for i in range(200))).return_code == 1


def test_unknown_field_and_read_only_entity(soap: SoapClient) -> None:
    reply = soap.create(ticket(Bogus="x"))
    assert reply.return_code == -1 and "Unknown field Bogus" in reply.errors[0]
    reply = soap.create(entity("Account", AccountName="New Co"))
    assert reply.return_code == -1 and "does not create Account" in reply.errors[0]


def test_unknown_operation_and_malformed_xml_are_faults(soap: SoapClient) -> None:
    reply = soap.call(etree.Element(q("delete"), nsmap={None: ATWS}))
    assert reply.status == 500 and reply.fault[0] == "soap:Client"
    reply = soap.post(b"<soap:Envelope xmlns:soap='" + SOAP_ENV.encode() + b"'><soap:Body><create>")
    assert reply.status == 500 and "not well-formed" in reply.fault[1]
    soap12 = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    assert soap.post(soap12).fault[0] == "soap:VersionMismatch"


# -- update ------------------------------------------------------------------------------------


def test_update_replaces_and_clears_fields_not_sent(soap: SoapClient, sandbox: Sandbox) -> None:
    ticket_id = soap.create_ticket(
        Description="first text", DueDateTime="2030-01-01T00:00:00", ExternalID="alert-7"
    )
    created = sandbox.state.get("Tickets", ticket_id)["createDate"]
    reply = soap.update(
        ticket(ticket_id, Title="renamed", Status=5, CreateDate="2001-01-01T00:00:00")
    )
    assert reply.return_code == 1, reply.errors
    [updated] = reply.entities
    assert updated["Title"] == "renamed"
    # A cleared Description and DueDateTime are left out; a cleared string Autotask keeps as ""
    # is an empty element, as in the real query_ticket_response.xml (trepidity/autotask_ruby).
    assert "Description" not in updated and "DueDateTime" not in updated
    assert updated["ExternalID"] == ""
    stored = sandbox.state.get("Tickets", ticket_id)
    assert stored["description"] is None and stored["externalID"] is None
    assert stored["createDate"] == created  # read-only: ignored, neither set nor cleared
    assert stored["ticketNumber"] is None  # writable (getFieldInfo) and not sent: cleared
    assert stored["completedDate"] is not None


def test_update_of_missing_ticket_is_an_error(soap: SoapClient) -> None:
    reply = soap.update(ticket(999))
    assert reply.return_code == -1
    assert "No matching records found" in reply.errors[0]


def test_update_batch_is_all_or_nothing(soap: SoapClient, sandbox: Sandbox) -> None:
    first, second = soap.create_ticket(Title="one"), soap.create_ticket(Title="two")
    reply = soap.update(ticket(first, Title="one changed"), ticket(second, Title=None))
    assert reply.return_code == -1
    assert reply.errors[0].startswith("Error updating entity for record number [2].")
    assert [t["title"] for t in sandbox.state.all("Tickets")] == ["one", "two"]


# -- query -------------------------------------------------------------------------------------


def test_query_by_id_returns_the_ticket(soap: SoapClient) -> None:
    ticket_id = soap.create_ticket(Description="desc")
    reply = soap.query(queryxml("Ticket", field("id", "equals", str(ticket_id))))
    assert reply.return_code == 1
    assert reply.ids == [ticket_id]
    assert reply.entities[0]["Description"] == "desc"
    assert reply.result.findtext(q("EntityResultType")) == "ticket"


def test_query_by_external_id_finds_the_idempotency_marker(soap: SoapClient) -> None:
    soap.create_ticket(ExternalID="other")
    wanted = soap.create_ticket(ExternalID="am:fp:3f9a<&>")
    reply = soap.query(queryxml("Ticket", field("ExternalID", "Equals", "am:fp:3f9a&lt;&amp;&gt;")))
    assert reply.ids == [wanted]
    assert reply.entities[0]["ExternalID"] == "am:fp:3f9a<&>"
    assert soap.query(queryxml("Ticket", field("ExternalID", "Equals", "missing"))).ids == []


@pytest.fixture
def three_tickets(soap: SoapClient) -> list[int]:
    return [
        soap.create_ticket(Title="Disk full on srv01", Priority=1, ExternalID="a"),
        soap.create_ticket(Title="CPU high on srv02", Priority=2),
        soap.create_ticket(Title="Disk slow on db01", Priority=3, ExternalID="c"),
    ]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (field("Priority", "Equals", "2"), [1]),
        (field("Priority", "NotEqual", "2"), [0, 2]),
        (field("Priority", "GreaterThan", "1"), [1, 2]),
        (field("Priority", "LessThan", "3"), [0, 1]),
        (field("Priority", "GreaterThanorEquals", "2"), [1, 2]),
        (field("Priority", "LessThanOrEquals", "2"), [0, 1]),
        (field("Title", "BeginsWith", "disk"), [0, 2]),
        (field("Title", "EndsWith", "SRV02"), [1]),
        (field("Title", "Contains", "slow"), [2]),
        (field("ExternalID", "IsNotNull"), [0, 2]),
        (field("ExternalID", "IsNull"), [1]),
        (
            "<condition>"
            + field("Title", "BeginsWith", "Disk")
            + '</condition><condition operator="OR">'
            + field("Priority", "Equals", "2")
            + "</condition>",
            [0, 1, 2],
        ),
        (
            field("Priority", "GreaterThan", "1")
            + "<condition><condition>"
            + field("Title", "Contains", "srv")
            + "</condition>"
            '<condition operator="OR">'
            + field("ExternalID", "Equals", "c")
            + "</condition></condition>",
            [1, 2],
        ),
        (
            '<field>Priority<expression op="GreaterThan">1</expression>'
            '<expression op="LessThan">3</expression></field>',
            [1],
        ),
    ],
)
def test_query_operators_and_conditions(
    soap: SoapClient, three_tickets: list[int], condition: str, expected: list[int]
) -> None:
    reply = soap.query(queryxml("Ticket", condition))
    assert reply.return_code == 1, reply.errors
    assert reply.ids == [three_tickets[i] for i in expected]


def test_query_udf_field(soap: SoapClient) -> None:
    wanted = soap.create_ticket(udfs={"Alert ID": "a-42"})
    soap.create_ticket(udfs={"Alert ID": "a-43"})
    reply = soap.query(queryxml("Ticket", field("Alert ID", "Equals", "a-42", udf=True)))
    assert reply.ids == [wanted]


def test_query_accounts_and_notes(soap: SoapClient) -> None:
    reply = soap.query(queryxml("Account", field("AccountName", "Contains", "contoso")))
    assert reply.ids == [CONTOSO]
    assert reply.entities[0]["_type"] == "Account"
    assert reply.entities[0]["Active"] == "true"
    ticket_id = soap.create_ticket()
    note_id = soap.create(note(ticket_id)).ids[0]
    reply = soap.query(queryxml("TicketNote", field("TicketID", "Equals", str(ticket_id))))
    assert reply.ids == [note_id]


def test_query_returns_at_most_500_sorted_by_id(soap: SoapClient) -> None:
    for _ in range(3):
        assert soap.create(*(ticket(Title="bulk") for _ in range(200))).return_code == 1
    reply = soap.query(queryxml("Ticket", field("Title", "Equals", "bulk")))
    assert len(reply.ids) == 500
    assert reply.ids == sorted(reply.ids)
    rest = soap.query(
        queryxml(
            "Ticket",
            field("Title", "Equals", "bulk") + field("id", "GreaterThan", str(reply.ids[-1])),
        )
    )
    assert len(rest.ids) == 100


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            queryxml("Ticket", field("Nope", "Equals", "1")),
            "Unable to find Nope in the Ticket Entity",
        ),
        (queryxml("Ticket", field("Title", "Like", "x%")), "does not support the query operator"),
        (queryxml("Ticket", field("Title", "Bogus", "x")), "Invalid query operator"),
        (queryxml("Contact", field("id", "Equals", "1")), "does not serve the entity type"),
        (queryxml("Ticket", ""), "at least one field"),
        (queryxml("Ticket", field("Priority", "Equals", "high")), "Invalid value"),
    ],
)
def test_query_errors_are_return_code_minus_one(soap: SoapClient, query: str, message: str) -> None:
    reply = soap.query(query)
    assert reply.return_code == -1
    assert message in reply.errors[0]


# -- getZoneInfo and getThresholdAndUsageInfo ---------------------------------------------------


def test_zone_info_needs_no_auth(
    soap: SoapClient, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    reply = soap.zone_info(soap.user.username.upper())
    result = reply.result
    assert result.findtext(q("URL")) == f"{sandbox_server.url}ATServices/1.6/atws.asmx"
    assert result.findtext(q("ErrorCode")) == "0"
    assert result.findtext(q("CI")) == str(sandbox.config.ci)
    assert sandbox.limits.usage() == 0  # exempt from the hourly count
    unknown = soap.zone_info("nobody@x.test").result
    assert int(unknown.findtext(q("ErrorCode")) or "0") < 0
    assert unknown.find(q("URL")) is None


def test_threshold_and_usage_info(soap: SoapClient) -> None:
    soap.create_ticket()
    reply = soap.threshold()
    assert reply.return_code == 1
    message = reply.result.findtext(
        f"{q('EntityReturnInfoResults')}/{q('EntityReturnInfo')}/{q('Message')}"
    )
    assert message == (
        "ThresholdOfExternalRequest: 10000; TimeframeOfLimitation: 60; numberOfExternalRequest: 2;"
    )


# -- the pipeline: call log, thread limits, faults -----------------------------------------------


def test_soap_calls_are_logged_and_thread_limited(
    soap: SoapClient, sandbox_server: SandboxServer, sandbox: Sandbox, rest: RestClient
) -> None:
    soap.create_ticket()
    calls = requests.get(f"{sandbox_server.url}_sandbox/calls", timeout=10).json()
    assert [
        (c["api"], c["endpoint"], c["operation"], c["status"], c["concurrent"]) for c in calls
    ] == [("soap", "soap:Ticket", "create", 200, 1)]
    assert calls[0]["path"].lower() == "/atservices/1.6/atws.asmx"
    code = soap.user.integration_code
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(sandbox.limits.thread_slot(code, "soap:Ticket"))
        reply = soap.create(ticket())
        # A soap:Server Fault with HTTP 500 (what ASMX answers a refusal with) and the real
        # REST wording (autotask-api.md §14); the SOAP form itself is not recorded.
        assert reply.status == 500
        assert reply.fault == ("soap:Server", "API thread threshold of 3 threads has been exceeded")
        # Other SOAP entities and the REST face have their own slots.
        assert soap.query(queryxml("Account", field("id", "Equals", str(CONTOSO)))).status == 200
        rest.create_ticket()
    assert soap.create(ticket()).return_code == 1
    assert [(c.api, c.endpoint, c.status) for c in sandbox.calls()[1:]] == [
        ("soap", "soap:Ticket", 500),
        ("soap", "soap:Account", 200),
        ("rest", "Tickets", 200),
        ("soap", "soap:Ticket", 200),
    ]


def test_injected_outage_is_a_fault_with_its_status(
    soap: SoapClient, sandbox_server: SandboxServer
) -> None:
    requests.post(
        f"{sandbox_server.url}_sandbox/faults", json={"outage": True}, timeout=10
    ).raise_for_status()
    reply = soap.create(ticket())
    assert reply.status == 503
    assert reply.fault[0] == "soap:Server"
    assert soap.zone_info(soap.user.username).status == 503


def test_ambiguous_create_drop_commits_the_ticket(
    soap: SoapClient, sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    plan = {"ambiguous_create": {"mode": "drop", "count": 1}}
    requests.post(f"{sandbox_server.url}_sandbox/faults", json=plan, timeout=10).raise_for_status()
    with pytest.raises(requests.ConnectionError):
        soap.create(ticket(ExternalID="alert-dropped"))
    assert [t["externalID"] for t in sandbox.state.all("Tickets")] == ["alert-dropped"]
    assert sandbox.calls()[-1].fault == "drop"
    reply = soap.query(queryxml("Ticket", field("ExternalID", "Equals", "alert-dropped")))
    assert len(reply.ids) == 1


# -- XML attacks -------------------------------------------------------------------------------

_ENVELOPE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<query xmlns="http://autotask.net/ATWS/v1_6/"><sXML>{sxml}</sXML></query>'
    "</soap:Body></soap:Envelope>"
)

ATTACKS = {
    "xxe_file": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + _ENVELOPE.format(sxml="&x;"),
    "xxe_parameter_entity": '<?xml version="1.0"?>'
    '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + _ENVELOPE.format(sxml="x"),
    "billion_laughs": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
    + _ENVELOPE.format(sxml="&lol9;"),
    "plain_doctype": '<?xml version="1.0"?><!DOCTYPE soap:Envelope>' + _ENVELOPE.format(sxml="x"),
    "xxe_in_sxml": _ENVELOPE.format(
        sxml='<![CDATA[<!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<queryxml><entity>Ticket</entity><query>"
        + field("Title", "equals", "&x;")
        + "</query></queryxml>]]>"
    ),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_xml_attacks_are_refused_with_a_fault(soap: SoapClient, name: str) -> None:
    started = time.monotonic()
    reply = soap.post(ATTACKS[name].encode(), action="query")
    assert time.monotonic() - started < 2
    assert reply.status == 500
    code, message = reply.fault
    assert code == "soap:Client"
    # libxml2 itself rejects billion laughs ("Maximum entity amplification factor exceeded").
    assert "DOCTYPE is not allowed" in message or "not well-formed" in message
    assert "root:" not in reply.text and "lollol" not in reply.text


def test_attacks_need_no_credentials_to_be_refused(soap: SoapClient) -> None:
    reply = soap.post(ATTACKS["xxe_file"].encode(), auth=("nobody", "nothing"))
    assert reply.status == 401  # HTTP Basic is checked first, as IIS does
    assert "root:" not in reply.text


def test_values_are_escaped_in_replies(soap: SoapClient, rest: RestClient) -> None:
    hostile = "</Title><Injected>1</Injected> & ]]> <![CDATA["
    ticket_id = soap.create_ticket(Description=hostile)
    found = soap.query(queryxml("Ticket", field("id", "Equals", str(ticket_id))))
    assert found.entities[0]["Description"] == hostile
    assert found.result.find(f".//{q('Injected')}") is None
    # A control character XML cannot carry (stored through REST) is replaced, not fatal.
    other = rest.create_ticket(description="bell\x07here")
    found = soap.query(queryxml("Ticket", field("id", "Equals", str(other))))
    assert found.entities[0]["Description"] == "bell\ufffdhere"


# -- every reply validates against the WSDL ------------------------------------------------------


def test_every_reply_of_a_battery_validates_against_the_wsdl(
    soap: SoapClient, sandbox_server: SandboxServer
) -> None:
    """Run each operation and error shape; `check_reply` validated every one on the way."""
    ticket_id = soap.create_ticket(
        Description="d", EstimatedHours="2.25", DueDateTime="2030-01-01T10:00:00Z"
    )
    soap.create(note(ticket_id))
    soap.create(ticket(udfs={"U": "v"}), ticket(Title="two"))
    soap.update(ticket(ticket_id, Title="t2", Status=5))
    soap.query(queryxml("Ticket", field("id", "GreaterThan", "0")))
    soap.query(queryxml("TicketNote", field("TicketID", "Equals", str(ticket_id))))
    soap.query(queryxml("Account", field("id", "GreaterThanorEquals", "0")))
    soap.zone_info(soap.user.username)
    soap.zone_info("nobody@x.test")
    soap.threshold()
    soap.create(ticket(Title=None))
    soap.create(ticket(), code="WRONG")
    soap.call(etree.Element(q("getThresholdAndUsageInfo"), nsmap={None: ATWS}), code=None)
    soap.update(ticket(424242))
    soap.query(queryxml("Ticket", field("Nope", "Equals", "1")))
    soap.create(ticket(), auth=("x", "y"))
    soap.post(ATTACKS["billion_laughs"].encode())
    kinds = {(r.status, r.content.tag if r.content is not None else None) for r in soap.replies}
    assert (200, q("createResponse")) in kinds
    assert (200, q("updateResponse")) in kinds
    assert (200, q("queryResponse")) in kinds
    assert (200, q("getZoneInfoResponse")) in kinds
    assert (200, q("getThresholdAndUsageInfoResponse")) in kinds
    assert (401, None) in kinds
    assert (500, f"{{{SOAP_ENV}}}Fault") in kinds
    validated = [r for r in soap.replies if r.status == 200]
    assert len(validated) == 15
    assert all(atws_schema().validate(r.content) for r in validated)


def test_concurrent_creates_get_distinct_ids(soap: SoapClient) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        reply = soap.create(ticket())
        with lock:
            ids.extend(reply.ids if reply.status == 200 else [])

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not [t for t in threads if t.is_alive()], "a create never returned"
    assert len(set(ids)) == len(ids) == 3
