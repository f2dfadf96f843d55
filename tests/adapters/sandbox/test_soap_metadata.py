"""The sandbox's SOAP metadata: the WSDL it serves, getEntityInfo and GetFieldInfo.

Sources: the WSDL's GetEntityInfo/GetFieldInfo elements and EntityInfo/Field/PickListValue types
(tests/fixtures/autotask/specs/atws-v1_6.trepidity-autotask_ruby.wsdl), the real getFieldInfo
rows (atws-v1_6-getFieldInfo-cache.ecitsolutions-2021-02.xml, as entities.FIELD_INFO), and
../shared/reference/autotask-api.md §3, §6 and §10. Every reply is validated against the WSDL's
schema by SoapClient.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.sandbox.entities import FIELD_INFO
from adapters.sandbox.soap.metadata import WSDL_FILE
from tests import canaries
from tests.adapters.sandbox.test_soap import (
    ATWS,
    WSDL,
    WSDL_NS,
    Reply,
    SoapClient,
    _parser,
    q,
)
from tests.conftest import RestClient

SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"


@pytest.fixture
def soap(sandbox_server: SandboxServer, api_user: ApiUser) -> SoapClient:
    """A SOAP client for the running sandbox."""
    return SoapClient(sandbox_server, api_user)


def entity_info(soap: SoapClient, **kwargs: Any) -> Reply:
    return soap.call(etree.Element(q("GetEntityInfo"), nsmap={None: ATWS}), **kwargs)


def field_info(soap: SoapClient, object_type: str, **kwargs: Any) -> Reply:
    operation = etree.Element(q("GetFieldInfo"), nsmap={None: ATWS})
    etree.SubElement(operation, q("psObjectType")).text = object_type
    return soap.call(operation, **kwargs)


def fields_of(reply: Reply) -> dict[str, etree._Element]:
    """GetFieldInfoResult's Field elements by Name."""
    assert reply.content is not None, reply.text
    return {
        element.findtext(q("Name")) or "": element
        for element in reply.content.iterfind(f"{q('GetFieldInfoResult')}/{q('Field')}")
    }


# -- the WSDL ----------------------------------------------------------------------------------


def test_the_packaged_wsdl_is_the_vendored_real_one() -> None:
    assert WSDL_FILE.read_bytes() == WSDL.read_bytes()


@pytest.mark.parametrize(
    "path",
    ["ATServices/1.6/atws.asmx?WSDL", "atservices/1.6/atws.asmx?wsdl", "ATServices/1.6/atws.wsdl"],
)
def test_the_wsdl_is_served_with_the_sandboxs_address(
    sandbox_server: SandboxServer, sandbox: Sandbox, path: str
) -> None:
    # ASMX answers ?WSDL; python-atws asks for atws.wsdl (autotask-api.md §10). No credentials.
    response = requests.get(f"{sandbox_server.url}{path}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    served = etree.fromstring(response.content, _parser())
    address = served.find(f".//{{{WSDL_NS}}}port/{{{SOAP_BINDING_NS}}}address")
    assert address is not None
    assert address.get("location") == f"{sandbox_server.url}ATServices/1.6/atws.asmx"
    # Everything else is the real WSDL, unchanged.
    real = WSDL.read_text(encoding="utf-8").lstrip()
    location = "https://webservices2.autotask.net/ATServices/1.6/atws.asmx"
    assert response.text == real.replace(location, address.get("location") or "")
    assert sandbox.limits.usage() == 0  # not counted against the hourly threshold


def test_the_asmx_without_wsdl_is_not_found(sandbox_server: SandboxServer) -> None:
    response = requests.get(f"{sandbox_server.url}ATServices/1.6/atws.asmx", timeout=10)
    assert response.status_code == 404


# -- getEntityInfo -----------------------------------------------------------------------------


def test_get_entity_info_matches_rest_entity_information(
    soap: SoapClient, rest: RestClient
) -> None:
    reply = entity_info(soap)
    assert reply.status == 200
    assert reply.content is not None
    infos = {
        element.findtext(q("Name")): {
            etree.QName(child).localname: child.text for child in element if child.tag != q("Name")
        }
        for element in reply.content.iterfind(f"{q('GetEntityInfoResult')}/{q('EntityInfo')}")
    }
    assert set(infos) == {"Account", "AllocationCode", "Ticket", "TicketNote"}
    for soap_name, rest_name in [
        ("Ticket", "Tickets"),
        ("TicketNote", "TicketNotes"),
        ("Account", "Companies"),
        ("AllocationCode", "BillingCodes"),
    ]:
        info = rest.get(f"{rest_name}/entityInformation").json()["info"]
        assert infos[soap_name] == {
            "CanUpdate": str(info["canUpdate"]).lower(),
            "CanDelete": str(info["canDelete"]).lower(),
            "CanCreate": str(info["canCreate"]).lower(),
            "CanQuery": str(info["canQuery"]).lower(),
            "HasUserDefinedFields": str(info["hasUserDefinedFields"]).lower(),
        }
    # FIELDINFO (real getEntityInfo, 2021): Ticket CanCreate, CanUpdate, CanQuery, not CanDelete.
    assert infos["Ticket"]["CanCreate"] == "true" and infos["Ticket"]["CanDelete"] == "false"


def test_metadata_calls_need_credentials(soap: SoapClient) -> None:
    assert entity_info(soap, auth=("nobody", "x")).status == 401
    # Their answers cannot carry an ATWSError, so a bad tracking identifier is a Fault with the
    # ATWS wording (python-atws #64, autotask-api.md §10).
    refused = field_info(soap, "Ticket", code=canaries.WRONG_INTEGRATION_CODE)
    assert (refused.status, refused.fault) == (500, ("soap:Client", "IntegrationCode is invalid."))


# -- GetFieldInfo ------------------------------------------------------------------------------


FIELD_ROWS = [
    # (entity, field, element, expected, source: the getFieldInfo row)
    ("Ticket", "Title", "Length", "255", "FIELDINFO Ticket.Title length 255"),
    ("Ticket", "Title", "IsRequired", "true", "FIELDINFO Ticket.Title required"),
    ("Ticket", "Description", "Length", "8000", "FIELDINFO Ticket.Description length 8000"),
    ("Ticket", "AccountID", "ReferenceEntityType", "Account", "FIELDINFO Ticket.AccountID"),
    ("Ticket", "Status", "IsPickList", "true", "FIELDINFO Ticket.Status picklist"),
    ("Ticket", "Status", "ReferenceEntityType", "", "FIELDINFO: '' when not a reference"),
    ("Ticket", "SubIssueType", "PicklistParentValueField", "IssueType", "FIELDINFO"),
    ("Ticket", "CreateDate", "IsReadOnly", "true", "FIELDINFO Ticket.CreateDate read-only"),
    ("Ticket", "CreateDate", "Type", "datetime", "FIELDINFO Ticket.CreateDate type"),
    ("TicketNote", "Description", "Length", "32000", "FIELDINFO TicketNote.Description"),
    ("TicketNote", "NoteType", "IsRequired", "true", "FIELDINFO TicketNote.NoteType"),
    ("Account", "AccountName", "Length", "100", "FIELDINFO Account.AccountName length 100"),
]


@pytest.mark.parametrize(
    ("entity", "name", "element", "expected", "source"),
    FIELD_ROWS,
    ids=[f"{r[0]}.{r[1]}.{r[2]}" for r in FIELD_ROWS],
)
def test_get_field_info_rows(
    soap: SoapClient, entity: str, name: str, element: str, expected: str | None, source: str
) -> None:
    reply = field_info(soap, entity)
    assert reply.status == 200
    assert fields_of(reply)[name].findtext(q(element)) == expected, source


@pytest.mark.parametrize(
    ("soap_name", "rest_name"),
    [
        ("Ticket", "Tickets"),
        ("TicketNote", "TicketNotes"),
        ("Account", "Companies"),
        ("AllocationCode", "BillingCodes"),
    ],
)
def test_get_field_info_answers_the_metadata_rest_answers(
    soap: SoapClient, rest: RestClient, soap_name: str, rest_name: str
) -> None:
    soap_fields = fields_of(field_info(soap, soap_name))
    assert list(soap_fields) == [str(row["name"]) for row in FIELD_INFO[rest_name]]
    rest_fields = {
        row["name"]: row
        for row in rest.get(f"{rest_name}/entityInformation/fields").json()["fields"]
    }
    for row in FIELD_INFO[rest_name]:
        if not row["rest_name"]:
            continue  # a SOAP-only field (Account.Country, KeyAccountIcon)
        rest_field = rest_fields[row["rest_name"]]
        soap_field = soap_fields[str(row["name"])]
        for element, key in [
            ("IsRequired", "isRequired"),
            ("IsReadOnly", "isReadOnly"),
            ("IsQueryable", "isQueryable"),
            ("IsReference", "isReference"),
            ("IsPickList", "isPickList"),
        ]:
            assert soap_field.findtext(q(element)) == str(rest_field[key]).lower(), element
        assert soap_field.findtext(q("Length")) == str(rest_field["length"])
        values = [
            (v.findtext(q("Value")), v.findtext(q("Label")), v.findtext(q("IsActive")))
            for v in soap_field.iterfind(f"{q('PicklistValues')}/{q('PickListValue')}")
        ]
        expected = [
            (v["value"], v["label"], str(v["isActive"]).lower())
            for v in rest_field["picklistValues"] or []
        ]
        assert values == expected, row["name"]


def test_ticket_status_picklist_is_served_with_its_values(soap: SoapClient) -> None:
    status = fields_of(field_info(soap, "ticket"))["Status"]  # the type is case-insensitive
    values = {
        v.findtext(q("Value")): v.findtext(q("Label"))
        for v in status.iterfind(f"{q('PicklistValues')}/{q('PickListValue')}")
    }
    # 1 New and 5 Complete (autotask-api.md §6, OFFICIAL Postman "not Complete" filter).
    assert values["1"] == "New" and values["5"] == "Complete"


def test_get_field_info_of_an_unknown_entity_is_a_fault(soap: SoapClient) -> None:
    reply = field_info(soap, "Invoice")
    assert reply.status == 500 and reply.fault[0] == "soap:Client"
    assert "Invoice" in reply.fault[1]


def test_get_field_info_shares_the_entitys_threads(
    soap: SoapClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    # Thread limits apply per tracking identifier and object endpoint (autotask-api.md §8); the
    # metadata call of an entity counts against that entity's endpoint, as n8n-nodes-autotask
    # found for REST entityInformation/fields (CHANGELOG, Itgenatr005 on getFieldInfo).
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(
                sandbox.limits.thread_slot(api_user.integration_code, "soap:Ticket")
            )
        refused = field_info(soap, "Ticket")
        assert refused.status == 500
        assert refused.fault[1] == "API thread threshold of 3 threads has been exceeded"
        assert field_info(soap, "Account").status == 200
        assert entity_info(soap).status == 200
