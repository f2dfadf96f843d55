"""The sandbox's API user security level (what it may query, create, update) and its work types.

Permission refusals use Autotask's words for a create ("The logged in Resource does not have the
adequate permissions to create this entity type.", HTTP 500: django-autotask, autotask-api.md §7);
work types are the billing codes of use type 1 (OFFICIAL ContractExclusionSetExcludedWorkType).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, Sandbox, SandboxConfig, SandboxServer
from adapters.sandbox.permissions import permission_error
from adapters.sandbox.seed import BILLING_CODES, OTHER_BILLING_CODES
from tests.adapters.sandbox.test_soap import ATWS, SoapClient, field, note, q, queryxml, ticket
from tests.conftest import RestClient

CONTOSO = 29683414


def deny(server: SandboxServer, plan: object) -> requests.Response:
    return requests.post(f"{server.url}_sandbox/permissions", json=plan, timeout=10)


def errors(response: requests.Response) -> list[str]:
    return list(response.json()["errors"])


# -- the control ---------------------------------------------------------------------------------


def test_permissions_control_shows_sets_and_resets(
    sandbox_server: SandboxServer, sandbox: Sandbox
) -> None:
    assert requests.get(f"{sandbox_server.url}_sandbox/permissions", timeout=10).json() == {}
    set_ = deny(sandbox_server, {"TicketNotes": ["create"], "Companies": ["query"]})
    assert set_.status_code == 200
    assert set_.json() == {"Companies": ["query"], "TicketNotes": ["create"]}
    assert not sandbox.service.security.allows("TicketNotes", "create")
    requests.post(f"{sandbox_server.url}_sandbox/reset", timeout=10)
    assert requests.get(f"{sandbox_server.url}_sandbox/permissions", timeout=10).json() == {}


@pytest.mark.parametrize(
    ("plan", "field_name"),
    [
        ({"Invoices": ["query"]}, "Invoices"),
        ({"Tickets": ["delete"]}, "Tickets"),
        ({"Tickets": "create"}, "Tickets"),
        (["Tickets"], "_schema"),
    ],
    ids=["unknown entity", "unknown action", "not a list", "not an object"],
)
def test_permissions_control_refuses_what_it_cannot_apply(
    sandbox_server: SandboxServer, plan: object, field_name: str
) -> None:
    refused = deny(sandbox_server, plan)
    assert refused.status_code == 400
    assert field_name in refused.json()["fields"]


def test_configured_denials_hold_from_the_start_and_after_a_reset() -> None:
    sandbox = Sandbox(SandboxConfig(denied={"Tickets": frozenset({"create"})}))
    assert not sandbox.service.security.allows("Tickets", "create")
    sandbox.service.security.denied.clear()
    sandbox.reset()
    assert not sandbox.service.security.allows("Tickets", "create")
    assert sandbox.service.security.allows("Tickets", "query")


# -- REST ------------------------------------------------------------------------------------------


def test_rest_create_without_permission_is_refused_in_autotasks_words(
    sandbox_server: SandboxServer, rest: RestClient, sandbox: Sandbox
) -> None:
    deny(sandbox_server, {"Tickets": ["create"]})
    body = {"companyID": CONTOSO, "title": "t", "status": 1, "priority": 2}
    refused = rest.post("Tickets", json=body)
    assert refused.status_code == 500
    assert errors(refused) == [
        "The logged in Resource does not have the adequate permissions to create this entity type."
    ]
    assert sandbox.state.all("Tickets") == []


def test_rest_query_and_update_without_permission_are_refused(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    ticket_id = rest.create_ticket()
    deny(sandbox_server, {"Tickets": ["query", "update"], "TicketNotes": ["create"]})
    search = json.dumps({"filter": [{"op": "eq", "field": "id", "value": ticket_id}]})
    for response in (
        rest.get("Tickets/query", params={"search": search}),
        rest.get(f"Tickets/{ticket_id}"),
    ):
        assert (response.status_code, errors(response)) == (500, [permission_error("query")])
    patched = rest.patch("Tickets", json={"id": ticket_id, "status": 5})
    assert errors(patched) == [permission_error("update")]
    noted = rest.post(
        f"Tickets/{ticket_id}/Notes", json={"description": "d", "noteType": 1, "publish": 1}
    )
    assert errors(noted) == [permission_error("create")]
    # Companies stay readable: the security level is per entity.
    assert rest.get("Companies/0").json()["item"]["id"] == 0


def test_rest_entity_information_tells_the_users_access(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    before = rest.get("Tickets/entityInformation").json()["info"]
    assert before["userAccessForCreate"] == "All" and before["canCreate"] is True
    deny(sandbox_server, {"Tickets": ["create"]})
    after = rest.get("Tickets/entityInformation").json()["info"]
    assert after["canCreate"] is True  # the API still allows creating tickets…
    assert after["userAccessForCreate"] == "None"  # …this API user may not
    assert after["userAccessForQuery"] == after["userAccessForUpdate"] == "All"


# -- SOAP ------------------------------------------------------------------------------------------


@pytest.fixture
def soap(sandbox_server: SandboxServer, api_user: ApiUser) -> SoapClient:
    return SoapClient(sandbox_server, api_user)


def test_soap_denials_are_atws_errors_and_false_can_flags(
    sandbox_server: SandboxServer, soap: SoapClient
) -> None:
    ticket_id = soap.create_ticket()
    deny(sandbox_server, {"Tickets": ["query"], "TicketNotes": ["create"]})
    queried = soap.query(queryxml("Ticket", field("id", "Equals", str(ticket_id))))
    assert queried.return_code == -1
    assert queried.errors == [permission_error("query")]
    noted = soap.create(note(ticket_id))
    assert noted.return_code == -1
    assert noted.errors[0].endswith(permission_error("create"))
    assert soap.create(ticket()).return_code == 1  # tickets may still be created
    info = soap.call(etree.Element(q("GetEntityInfo"), nsmap={None: ATWS}))
    flags = {
        element.findtext(q("Name")): (
            element.findtext(q("CanQuery")),
            element.findtext(q("CanCreate")),
        )
        for element in info.content.iterfind(f"{q('GetEntityInfoResult')}/{q('EntityInfo')}")
    }
    assert flags["Ticket"] == ("false", "true")
    assert flags["TicketNote"] == ("true", "false")
    assert flags["Account"] == ("true", "false")  # never creatable here


# -- work types --------------------------------------------------------------------------------


def test_rest_billing_codes_are_queried_by_use_type(rest: RestClient) -> None:
    search = json.dumps(
        {
            "filter": [{"op": "eq", "field": "useType", "value": 1}],
            "includeFields": ["id", "name", "isActive"],
        }
    )
    answer = rest.get("BillingCodes/query", params={"search": search})
    assert answer.status_code == 200, answer.text
    found = {item["id"]: (item["name"], item["isActive"]) for item in answer.json()["items"]}
    assert found == {
        code["id"]: (code["name"], not code["name"].endswith("(inactive)"))
        for code in BILLING_CODES
    }
    search = json.dumps({"filter": [{"op": "exist", "field": "id"}]})
    everything = rest.get("BillingCodes/query", params={"search": search})
    assert {item["id"] for item in everything.json()["items"]} >= {
        code["id"] for code in OTHER_BILLING_CODES
    }


def test_billing_codes_cannot_be_written(rest: RestClient) -> None:
    # The Swagger has no write path for BillingCodes at all: an unknown route.
    refused = rest.post("BillingCodes", json={"name": "x"})
    assert refused.status_code == 404


def test_soap_allocation_codes_are_queried_by_use_type(soap: SoapClient) -> None:
    reply = soap.query(queryxml("AllocationCode", field("UseType", "Equals", "1")))
    assert reply.return_code == 1, reply.errors
    names = {int(e["id"]): e["Name"] for e in reply.entities}
    assert names == {code["id"]: code["name"] for code in BILLING_CODES}
    assert {e["_type"] for e in reply.entities} == {"AllocationCode"}


def test_a_state_file_from_before_billing_codes_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = Sandbox(SandboxConfig(state_file=str(path)))
    ticket_id = first.service.create(
        "Tickets", {"companyID": CONTOSO, "title": "t", "status": 1, "priority": 2}
    )
    # As a state file written before billing codes were served holds it.
    assert first.state._db is not None
    first.state._db.execute("DELETE FROM records WHERE entity = 'BillingCodes'")
    first.state.close()

    second = Sandbox(SandboxConfig(state_file=str(path)))
    assert second.service.get("Tickets", ticket_id) is not None
    assert len(second.state.all("BillingCodes")) == len(BILLING_CODES) + len(OTHER_BILLING_CODES)
    second.state.close()
