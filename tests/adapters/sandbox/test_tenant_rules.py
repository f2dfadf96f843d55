"""The sandbox refuses tickets the way a real Autotask tenant does: references, lengths, categories.

Sources, as cited per test: ../shared/reference/autotask-api.md §3, §5 and §14 (real error
wording), the getFieldInfo rows of tests/fixtures/autotask/specs (which Ticket and TicketNote
fields are references, and to which entity type), and the Autotask help pages the reference cites.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
import requests
from flask.testing import FlaskClient

from adapters.sandbox import ApiUser, Sandbox, SandboxConfig, SandboxServer
from adapters.sandbox.app import create_sandbox_app
from adapters.sandbox.entities import FIELD_INFO
from adapters.sandbox.seed import REFERENCE_RECORDS, is_active, seed_companies
from adapters.sandbox.tenant import ApiTicketCategory, load_ticket_category
from connector.cli import _start_sandbox
from connector.config import load_settings
from tests.adapters.sandbox.test_rest import auth_headers, errors_of, get_ticket
from tests.adapters.sandbox.test_soap import SoapClient, ticket
from tests.conftest import RestClient

JSON_CONTENT = {"Content-Type": "application/json"}
CONTOSO = 29683414
FABRIKAM = 29683415
ADVENTURE_WORKS_INACTIVE = 29683417
TICKET = {"companyID": CONTOSO, "title": "Disk full on srv01", "status": 1, "priority": 2}
NOTE = {"description": "Alert acknowledged by on-call.", "noteType": 1, "publish": 1}
STATUS_COMPLETE = 5
API_ONLY_CATEGORY = 5
NO_SUCH_ID = 99999999


def reference_error(field: str, entity_type: str) -> str:
    """Autotask's real reference error (autotask-api.md §14, n8n-nodes-autotask)."""
    return (
        f"Reference value on field: {field} of type: {entity_type} does not exist or is invalid."
        " ; on record number [1]."
    )


def required_error(field: str) -> str:
    """Autotask's real required-field error (autotask-api.md §14, autotask-mcp PR #288)."""
    return f"{field} is required.; on record number [0]."


def length_error(field: str) -> str:
    """Autotask's real length error (autotask-api.md §14, n8n-nodes-autotask #48)."""
    return f"String value exceeds maximum length (field:{field})."


def writable_references(entity: str) -> list[tuple[str, str]]:
    """(REST property, reference entity type) of each writable reference field in getFieldInfo."""
    return [
        (str(row["rest_name"]), str(row["reference"]))
        for row in FIELD_INFO[entity]
        if row["reference"] and not row["read_only"] and row["rest_name"]
    ]


def control(server: SandboxServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Call one of the sandbox's /_sandbox/ control endpoints."""
    return requests.request(method, f"{server.url}_sandbox/{path}", timeout=10, **kwargs)


def set_category(server: SandboxServer, body: Any) -> None:
    # json=None would send no body at all; "null" is the explicit way to say "none".
    response = control(
        server, "POST", "ticket-category", data=json.dumps(body), headers=JSON_CONTENT
    )
    assert response.status_code == 200, response.text


# -- the seeded reference records -----------------------------------------------------------------


def test_inactive_reference_records_say_so_in_their_name() -> None:
    # Brief for the seed: inactive records must be recognisable by name, "(inactive)".
    for entity_type, records in REFERENCE_RECORDS.items():
        for record in records.values():
            name = " ".join(
                str(record.get(key, ""))
                for key in ("name", "firstName", "lastName", "referenceTitle", "contractName")
            )
            assert ("(inactive)" in name) == (not is_active(entity_type, record)), record
    for company in seed_companies():
        assert ("(inactive)" in company["companyName"]) == (not company["isActive"]), company


def test_every_reference_type_of_a_ticket_field_is_either_seeded_or_known_unseeded() -> None:
    # getFieldInfo `Ticket` rows: the reference entity types the sandbox has to answer for.
    seeded = set(REFERENCE_RECORDS) | {"Account", "Ticket"}
    unseeded = {
        "Opportunity",
        "Project",
        "ContractService",
        "ContractServiceBundle",
        "BusinessDivisionSubdivision",
    }
    types = {entity_type for _, entity_type in writable_references("Tickets")}
    assert types <= seeded | unseeded, types - seeded - unseeded


# -- reference fields on create -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "entity_type"),
    writable_references("Tickets"),
    ids=[field for field, _ in writable_references("Tickets")],
)
def test_create_refuses_a_reference_to_no_record(
    rest: RestClient, field: str, entity_type: str
) -> None:
    # getFieldInfo `Ticket`: every writable reference field, with the type the row names.
    # Wording: autotask-api.md §14 (n8n-nodes-autotask, "Reference value on field: …").
    errors = errors_of(rest.post("Tickets", json=TICKET | {field: NO_SUCH_ID}))
    assert reference_error(field, entity_type) in errors, errors


@pytest.mark.parametrize(
    ("field", "value", "entity_type"),
    [
        pytest.param("contactID", 29683602, "Contact", id="inactive-contact"),
        pytest.param("contactID", 29683603, "Contact", id="contact-of-another-company"),
        pytest.param("createdByContactID", 29683603, "Contact", id="creator-of-another-company"),
        pytest.param("companyLocationID", 29683702, "AccountPhysicalLocation", id="inactive-loc"),
        pytest.param("companyLocationID", 29683703, "AccountPhysicalLocation", id="other-loc"),
        pytest.param("configurationItemID", 29683802, "InstalledProduct", id="inactive-ci"),
        pytest.param("configurationItemID", 29683803, "InstalledProduct", id="other-ci"),
        pytest.param("contractID", 29683902, "Contract", id="inactive-contract"),
        pytest.param("contractID", 29683903, "Contract", id="other-contract"),
        pytest.param("billingCodeID", 29682809, "AllocationCode", id="inactive-work-type"),
        pytest.param("companyID", ADVENTURE_WORKS_INACTIVE, "Account", id="inactive-company"),
    ],
)
def test_create_refuses_an_inactive_or_foreign_reference(
    rest: RestClient, field: str, value: int, entity_type: str
) -> None:
    # Inactive records are refused like missing ones (autotask-api.md §14, n8n-nodes-autotask
    # inactive-entity handling). Records of another company: contacts "must be associated with
    # the ticket's Company" (OFFICIAL TicketAdditionalContactsEntity.htm), inferred for the
    # location, configuration item and contract, whose getFieldInfo rows require an AccountID.
    errors = errors_of(rest.post("Tickets", json=TICKET | {field: value}))
    assert errors == [reference_error(field, entity_type)], errors


def test_create_accepts_active_references_of_the_ticket_company(rest: RestClient) -> None:
    # The seeded Contoso records (seed.py) and the work types the connector's tests configure.
    problem = rest.create_ticket()
    ticket_id = rest.create_ticket(
        contactID=29683601,
        createdByContactID=29683601,
        companyLocationID=29683701,
        configurationItemID=29683801,
        contractID=29683901,
        billingCodeID=29682805,
        problemTicketId=problem,
        assignedResourceID=29682886,
        assignedResourceRoleID=29682803,
    )
    stored = get_ticket(rest, ticket_id)
    assert (stored["contactID"], stored["billingCodeID"], stored["problemTicketId"]) == (
        29683601,
        29682805,
        problem,
    )


def test_company_zero_the_msps_own_takes_its_own_contact(rest: RestClient) -> None:
    # companyID 0 is the MSP's own company (OFFICIAL Postman, autotask-api.md §3).
    rest.create_ticket(companyID=0, contactID=29683605, companyLocationID=29683705)


# -- reference fields on update -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize(
    ("field", "value", "entity_type"),
    [
        ("contactID", 29683602, "Contact"),
        ("billingCodeID", NO_SUCH_ID, "AllocationCode"),
        ("projectID", 1, "Project"),
        ("opportunityID", 1, "Opportunity"),
        ("configurationItemID", 29683803, "InstalledProduct"),
    ],
    ids=["inactive-contact", "no-work-type", "project", "opportunity", "foreign-ci"],
)
def test_update_refuses_a_bad_reference(
    rest: RestClient, method: str, field: str, value: int, entity_type: str
) -> None:
    # getFieldInfo `Ticket` reference rows; updates are checked like creates (n8n-nodes-autotask
    # retries inactive references on create and update alike, autotask-api.md §14).
    ticket_id = rest.create_ticket()
    body = {"id": ticket_id, field: value}
    if method == "PUT":
        body |= TICKET  # PUT replaces the record: the required fields come along
    errors = errors_of(rest.request(method, "Tickets", json=body))
    assert errors == [reference_error(field, entity_type)], errors
    assert get_ticket(rest, ticket_id)[field] is None


def test_moving_a_ticket_to_another_company_rechecks_its_contact(rest: RestClient) -> None:
    # A contact must belong to the ticket's company (see COMPANY_OWNED in validation.py).
    ticket_id = rest.create_ticket(contactID=29683601)
    errors = errors_of(rest.patch("Tickets", json={"id": ticket_id, "companyID": FABRIKAM}))
    assert errors == [reference_error("contactID", "Contact")], errors
    response = rest.patch(
        "Tickets", json={"id": ticket_id, "companyID": FABRIKAM, "contactID": 29683603}
    )
    assert response.status_code == 200, response.text


def test_update_accepts_a_valid_reference(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    response = rest.patch("Tickets", json={"id": ticket_id, "billingCodeID": 29682801})
    assert response.status_code == 200, response.text
    assert get_ticket(rest, ticket_id)["billingCodeID"] == 29682801


# -- resources and roles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "role", "refused"),
    [
        pytest.param(29682886, 29682803, None, id="technician-in-queues"),
        pytest.param(29682887, 29682804, None, id="engineer-in-queues"),
        pytest.param(29682887, 29682803, None, id="second-role-in-a-queue"),
        pytest.param(29682888, 29682803, ("assignedResourceID", "Resource"), id="inactive"),
        pytest.param(NO_SUCH_ID, 29682803, ("assignedResourceID", "Resource"), id="no-resource"),
        pytest.param(29682886, NO_SUCH_ID, ("assignedResourceRoleID", "Role"), id="no-role"),
        pytest.param(29682886, 29682807, ("assignedResourceRoleID", "Role"), id="inactive-role"),
        pytest.param(29682886, 29682804, ("assignedResourceRoleID", "Role"), id="not-his-role"),
        pytest.param(29682886, 29682806, ("assignedResourceRoleID", "Role"), id="role-no-queue"),
        pytest.param(29682885, 29682803, ("assignedResourceRoleID", "Role"), id="api-user"),
    ],
)
def test_assigned_resource_and_role_must_be_a_valid_pair(
    rest: RestClient, resource: int, role: int, refused: tuple[str, str] | None
) -> None:
    # "A Resource + Role combination assigned to a ticket must be associated with at least one
    # Service Desk Queue" (OFFICIAL TicketsEntity.htm, autotask-api.md §3); inactive resources
    # are refused like missing ones (autotask-api.md §14). Seeded pairs: seed.py.
    body = TICKET | {"assignedResourceID": resource, "assignedResourceRoleID": role}
    response = rest.post("Tickets", json=body)
    if refused is None:
        assert response.status_code == 200, response.text
    else:
        assert errors_of(response) == [reference_error(*refused)]


def test_a_resource_needs_a_role_on_update_too(rest: RestClient) -> None:
    # Real wording: WYRE-AI/msp-claude-plugins #32 (autotask-api.md §3).
    ticket_id = rest.create_ticket()
    errors = errors_of(
        rest.patch("Tickets", json={"id": ticket_id, "assignedResourceID": 29682886})
    )
    assert errors == [
        "When assigning a Resource, you must assign both a assignedResourceID"
        " and assignedResourceRoleID."
    ]
    body = {"id": ticket_id, "assignedResourceID": 29682886, "assignedResourceRoleID": 29682804}
    assert errors_of(rest.patch("Tickets", json=body)) == [
        reference_error("assignedResourceRoleID", "Role")
    ]


# -- ticket notes ---------------------------------------------------------------------------------


def test_note_references_are_checked(rest: RestClient) -> None:
    # getFieldInfo `TicketNote`: TicketID → Ticket, CreatedByContactID → Contact (writable).
    assert {field for field, _ in writable_references("TicketNotes")} == {
        "ticketID",
        "createdByContactID",
    }
    ticket_id = rest.create_ticket()
    path = f"Tickets/{ticket_id}/Notes"
    errors = errors_of(rest.post(path, json=NOTE | {"createdByContactID": 29683602}))
    assert errors == [reference_error("createdByContactID", "Contact")], errors
    errors = errors_of(rest.post(f"Tickets/{NO_SUCH_ID}/Notes", json=NOTE))
    assert errors == [reference_error("ticketID", "Ticket")], errors
    response = rest.post(path, json=NOTE | {"createdByContactID": 29683601})
    assert response.status_code == 200, response.text


# -- inactive companies ---------------------------------------------------------------------------


def sandbox_client(api_user: ApiUser, **config: Any) -> tuple[Sandbox, FlaskClient]:
    sandbox = Sandbox(SandboxConfig(user=api_user, **config))
    return sandbox, create_sandbox_app(sandbox).test_client()


def test_inactive_company_takes_no_new_ticket(rest: RestClient) -> None:
    # Seeded 29683417 "Adventure Works (inactive)"; refused with the reference wording, as
    # inactive references are (autotask-api.md §14).
    body = TICKET | {"companyID": ADVENTURE_WORKS_INACTIVE}
    assert errors_of(rest.post("Tickets", json=body)) == [reference_error("companyID", "Account")]


def test_a_tenant_may_let_inactive_companies_take_tickets(api_user: ApiUser) -> None:
    # Tenants differ (SandboxConfig.refuse_inactive_companies); off, the ticket is created.
    sandbox, client = sandbox_client(api_user, refuse_inactive_companies=False)
    response = client.post(
        "/atservicesrest/v1.0/Tickets",
        json=TICKET | {"companyID": ADVENTURE_WORKS_INACTIVE},
        headers=auth_headers(api_user),
    )
    assert response.status_code == 200, response.text


def test_a_ticket_of_a_company_that_became_inactive_can_still_be_completed(
    api_user: ApiUser,
) -> None:
    # Only new tickets (and moves to the company) are refused; existing ones are worked on.
    sandbox, client = sandbox_client(api_user, refuse_inactive_companies=False)
    headers = auth_headers(api_user)
    url = "/atservicesrest/v1.0/Tickets"
    body = TICKET | {"companyID": ADVENTURE_WORKS_INACTIVE}
    old = client.post(url, json=body, headers=headers).get_json()["itemId"]
    other = client.post(url, json=TICKET, headers=headers).get_json()["itemId"]
    sandbox.service.rules.refuse_inactive_companies = True
    done = client.patch(url, json={"id": old, "status": STATUS_COMPLETE}, headers=headers)
    assert done.status_code == 200, done.get_json()
    moved = client.patch(
        url, json={"id": other, "companyID": ADVENTURE_WORKS_INACTIVE}, headers=headers
    )
    assert moved.status_code == 500
    assert moved.get_json() == {"errors": [reference_error("companyID", "Account")]}


def test_soap_create_meets_the_same_rules(sandbox_server: SandboxServer, api_user: ApiUser) -> None:
    # The SOAP face shares the service (AccountID is companyID, AllocationCodeID billingCodeID).
    soap = SoapClient(sandbox_server, api_user)
    reply = soap.create(ticket(AccountID=ADVENTURE_WORKS_INACTIVE))
    assert reply.return_code == -1
    assert reply.errors == [
        "Error updating entity for record number [1]. " + reference_error("companyID", "Account")
    ]
    reply = soap.create(ticket(AllocationCodeID=29682809))
    assert reply.errors == [
        "Error updating entity for record number [1]. "
        + reference_error("billingCodeID", "AllocationCode")
    ]


# -- lengths in UTF-16 code units -----------------------------------------------------------------

FIRE = "\U0001f525"  # outside the BMP: two UTF-16 code units, one code point


@pytest.mark.parametrize(
    ("title", "accepted"),
    [
        pytest.param("x" * 255, True, id="255-ascii"),
        pytest.param("é" * 255, True, id="255-bmp-letters"),
        pytest.param(FIRE + "x" * 253, True, id="emoji-255-units"),
        pytest.param(FIRE + "x" * 254, False, id="emoji-255-code-points-256-units"),
        pytest.param(FIRE * 128, False, id="128-emoji-256-units"),
        pytest.param("\ud800" * 255, True, id="lone-surrogates-one-unit-each"),
    ],
)
def test_title_length_counts_utf16_code_units(rest: RestClient, title: str, accepted: bool) -> None:
    # Title ≤ 255 (getFieldInfo `Ticket`); .NET and SQL Server count UTF-16 code units
    # (autotask-api.md §14, inferred). Wording: n8n-nodes-autotask #48, no record-number suffix.
    response = rest.post("Tickets", json=TICKET | {"title": title})
    if accepted:
        assert response.status_code == 200, response.text
        assert get_ticket(rest, response.json()["itemId"])["title"] == title
    else:
        assert errors_of(response) == [length_error("title")]


def test_note_title_length_counts_utf16_code_units_on_update(rest: RestClient) -> None:
    # TicketNote Title ≤ 250 (getFieldInfo `TicketNote`, autotask-api.md §5).
    ticket_id = rest.create_ticket()
    path = f"Tickets/{ticket_id}/Notes"
    note_id = rest.post(path, json=NOTE).json()["itemId"]
    errors = errors_of(rest.patch(path, json={"id": note_id, "title": FIRE * 125 + "x"}))
    assert errors == [length_error("title")]
    assert rest.patch(path, json={"id": note_id, "title": FIRE * 125}).status_code == 200


# -- required fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["companyID", "title", "status", "priority"])
def test_a_missing_required_field_has_the_real_wording(rest: RestClient, field: str) -> None:
    # Required per getFieldInfo `Ticket`; wording autotask-api.md §14 (autotask-mcp PR #288).
    body = {k: v for k, v in TICKET.items() if k != field}
    assert errors_of(rest.post("Tickets", json=body)) == [required_error(field)]


# -- the API-only ticket category -----------------------------------------------------------------

CATEGORY = {
    "id": API_ONLY_CATEGORY,
    "defaults": {"queueID": 29682833, "priority": 1, "issueType": 16},
    "required": ["queueID", "billingCodeID", "dueDateTime"],
    "resolution_required_to_complete": True,
    "note_title_required": True,
}
DUE = "2030-03-21T00:00:00Z"


def test_no_api_only_category_by_default(sandbox_server: SandboxServer, rest: RestClient) -> None:
    assert control(sandbox_server, "GET", "ticket-category").json() == {}
    assert get_ticket(rest, rest.create_ticket())["ticketCategory"] is None


def test_the_category_is_set_and_read_at_run_time(sandbox_server: SandboxServer) -> None:
    set_category(sandbox_server, CATEGORY | {"defaults": {"QueueID": "29682833"}})
    described = control(sandbox_server, "GET", "ticket-category").json()
    assert described == CATEGORY | {"defaults": {"queueID": 29682833}}
    set_category(sandbox_server, None)
    assert control(sandbox_server, "GET", "ticket-category").json() == {}


def test_a_new_ticket_gets_the_category_and_its_defaults(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    # API-only categories set "the default value … of fields" of API-created tickets
    # (autotask.net help API_only_Ticket_Categories.htm, autotask-api.md §14).
    set_category(sandbox_server, CATEGORY)
    body = {k: v for k, v in TICKET.items() if k != "priority"}
    body |= {"billingCodeID": 29682801, "dueDateTime": DUE, "issueType": 2}
    response = rest.post("Tickets", json=body)
    assert response.status_code == 200, response.text
    stored = get_ticket(rest, response.json()["itemId"])
    assert (
        stored["ticketCategory"],
        stored["queueID"],
        stored["priority"],
        stored["issueType"],
    ) == (API_ONLY_CATEGORY, 29682833, 1, 2)


@pytest.mark.parametrize("missing", ["billingCodeID", "dueDateTime"])
def test_the_category_makes_fields_required(
    sandbox_server: SandboxServer, rest: RestClient, missing: str
) -> None:
    # "dueDateTime is required.; on record number [0]." (autotask-mcp PR #288); some tenants need
    # billingCodeID or queueID (KelvinTegelaar/AutotaskAPI #74). autotask-api.md §14.
    set_category(sandbox_server, CATEGORY)
    body = TICKET | {"billingCodeID": 29682801, "dueDateTime": DUE}
    del body[missing]
    assert errors_of(rest.post("Tickets", json=body)) == [required_error(missing)]


def test_a_category_default_satisfies_its_required_field(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    # dueDateTime is required only when the category gives no due date of its own.
    set_category(sandbox_server, CATEGORY | {"defaults": {"dueDateTime": DUE}})
    errors = errors_of(rest.post("Tickets", json=TICKET | {"billingCodeID": 29682801}))
    assert errors == [required_error("queueID")]
    rest.create_ticket(billingCodeID=29682801, queueID=29683481)


def test_a_ticket_of_another_category_is_not_bound_by_it(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    set_category(sandbox_server, CATEGORY)
    ticket_id = rest.create_ticket(ticketCategory=4)
    stored = get_ticket(rest, ticket_id)
    assert (stored["ticketCategory"], stored["queueID"]) == (4, None)
    done = rest.patch("Tickets", json={"id": ticket_id, "status": STATUS_COMPLETE})
    assert done.status_code == 200, done.text


def test_completing_needs_a_resolution(sandbox_server: SandboxServer, rest: RestClient) -> None:
    # A tenant/category setting (autotask-api.md §3: "Whether a resolution is mandatory on
    # completion is a tenant/category setting"); the wording is the cited required-field form.
    set_category(sandbox_server, CATEGORY)
    ticket_id = rest.create_ticket(billingCodeID=29682801, dueDateTime=DUE)
    for body in ({"status": STATUS_COMPLETE}, {"status": STATUS_COMPLETE, "resolution": "  "}):
        errors = errors_of(rest.patch("Tickets", json={"id": ticket_id} | body))
        assert errors == [required_error("resolution")]
    assert get_ticket(rest, ticket_id)["status"] == 1
    body = {"id": ticket_id, "status": STATUS_COMPLETE, "resolution": "Disk cleaned up."}
    assert rest.patch("Tickets", json=body).status_code == 200


def test_a_resolution_given_earlier_lets_the_ticket_complete(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    set_category(sandbox_server, CATEGORY)
    ticket_id = rest.create_ticket(billingCodeID=29682801, dueDateTime=DUE, resolution="Fixed.")
    done = rest.patch("Tickets", json={"id": ticket_id, "status": STATUS_COMPLETE})
    assert done.status_code == 200, done.text


def test_notes_need_a_title_in_the_category(
    sandbox_server: SandboxServer, rest: RestClient
) -> None:
    # "Whether ticket note titles are required is determined by the Require titles on ticket
    # notes Ticket Category setting" (OFFICIAL TicketNotesEntity.htm, autotask-api.md §5).
    plain_ticket = rest.create_ticket()
    set_category(sandbox_server, CATEGORY)
    ticket_id = rest.create_ticket(billingCodeID=29682801, dueDateTime=DUE)
    errors = errors_of(rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE))
    assert errors == [required_error("title")]
    titled = rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE | {"title": "Acknowledged"})
    assert titled.status_code == 200, titled.text
    untitled = rest.post(f"Tickets/{plain_ticket}/Notes", json=NOTE)
    assert untitled.status_code == 200, untitled.text


def test_soap_batches_meet_the_category_too(
    sandbox_server: SandboxServer, api_user: ApiUser, sandbox: Sandbox
) -> None:
    # A SOAP batch fails whole (autotask-api.md §10): the trial run applies the same rules.
    set_category(sandbox_server, CATEGORY)
    soap = SoapClient(sandbox_server, api_user)
    good = ticket(AllocationCodeID=29682801, DueDateTime=DUE)
    reply = soap.create(good, ticket(DueDateTime=DUE))
    assert reply.errors == [
        "Error updating entity for record number [2]. " + required_error("billingCodeID")
    ]
    assert sandbox.state.all("Tickets") == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": 99}, id="not-a-category"),
        pytest.param({"id": 5, "defaults": {"queueId2": 1}}, id="unknown-default-field"),
        pytest.param({"id": 5, "defaults": {"createDate": DUE}}, id="read-only-default"),
        pytest.param({"id": 5, "defaults": {"queueID": None}}, id="null-default"),
        pytest.param({"id": 5, "defaults": {"queueID": "five"}}, id="default-of-wrong-type"),
        pytest.param({"id": 5, "required": ["noSuchField"]}, id="unknown-required-field"),
        pytest.param({"id": 5, "colour": "red"}, id="unknown-key"),
        pytest.param({"defaults": {}}, id="no-id"),
        pytest.param([5], id="not-an-object"),
    ],
)
def test_a_bad_category_is_refused(sandbox_server: SandboxServer, body: Any) -> None:
    response = control(sandbox_server, "POST", "ticket-category", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid ticket category"
    assert control(sandbox_server, "GET", "ticket-category").json() == {}


def test_a_body_that_is_not_json_is_refused(sandbox_server: SandboxServer) -> None:
    response = control(sandbox_server, "POST", "ticket-category", data="{not json")
    assert response.status_code == 400, response.text


def test_reset_restores_the_configured_category(api_user: ApiUser) -> None:
    # Tests share a sandbox: a reset drops run-time changes and keeps the configuration.
    configured = load_ticket_category(CATEGORY)
    assert isinstance(configured, ApiTicketCategory)
    sandbox, client = sandbox_client(api_user, api_ticket_category=configured)
    assert client.get("/_sandbox/ticket-category").get_json() == CATEGORY
    client.post("/_sandbox/ticket-category", json={})
    assert client.get("/_sandbox/ticket-category").get_json() == {}
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/ticket-category").get_json() == CATEGORY

    plain, plain_client = sandbox_client(api_user)
    plain_client.post("/_sandbox/ticket-category", json=CATEGORY)
    plain_client.post("/_sandbox/reset")
    assert plain_client.get("/_sandbox/ticket-category").get_json() == {}


# -- configuration from the environment -----------------------------------------------------------


def test_the_environment_configures_the_cli_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    # CONNECTOR_SANDBOX_* settings, read as the other sandbox settings are (connector/config.py).
    monkeypatch.setenv("CONNECTOR_SANDBOX_REFUSE_INACTIVE_COMPANIES", "false")
    monkeypatch.setenv("CONNECTOR_SANDBOX_API_TICKET_CATEGORY", json.dumps(CATEGORY))
    with _start_sandbox(load_settings(), "127.0.0.1", 0) as server:
        rules = server.sandbox.service.rules
        assert rules.refuse_inactive_companies is False
        assert rules.api_ticket_category == load_ticket_category(CATEGORY)


def test_a_bad_category_in_the_environment_stops_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_SANDBOX_API_TICKET_CATEGORY", '{"id": 99}')
    with pytest.raises(click.ClickException, match="SANDBOX_API_TICKET_CATEGORY"):
        _start_sandbox(load_settings(), "127.0.0.1", 0)
