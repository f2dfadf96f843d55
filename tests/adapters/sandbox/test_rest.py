"""The sandbox's REST face behaves as autotask-api.md §1–§7 and §13 describe Autotask's."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from adapters.sandbox import ApiUser, Sandbox, SandboxConfig, create_sandbox_app
from adapters.sandbox.values import parse_datetime
from tests.conftest import SPECS, RestClient

SWAGGER = json.loads(
    (SPECS / "autotask-rest-swagger-v1.0.SergLGP-2022.json").read_text(encoding="utf-8")
)
TICKET_MODEL = SWAGGER["definitions"]["TicketModel"]["properties"]
NOTE_MODEL = SWAGGER["definitions"]["TicketNoteModel"]["properties"]

COMPANY = 29683414
TICKET = {"companyID": COMPANY, "title": "Disk full on srv01", "status": 1, "priority": 2}
NOTE = {"description": "Alert acknowledged by on-call.", "noteType": 1, "publish": 1}


def errors_of(response: requests.Response, status: int = 500) -> list[str]:
    """Assert Autotask's error shape, `{"errors": ["…"]}`, and return the messages."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["errors"], body
    assert body["errors"], body
    assert all(isinstance(message, str) for message in body["errors"]), body
    return list(body["errors"])


def get_ticket(rest: RestClient, ticket_id: int) -> dict[str, Any]:
    response = rest.get(f"Tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    item: dict[str, Any] = response.json()["item"]
    return item


def auth_headers(user: ApiUser) -> dict[str, str]:
    return {
        "UserName": user.username,
        "Secret": user.secret,
        "ApiIntegrationCode": user.integration_code,
    }


# -- zone information ------------------------------------------------------------------------


def test_zone_information_needs_no_auth_and_points_back_at_the_sandbox(
    sandbox_server: Any, api_user: ApiUser
) -> None:
    response = requests.get(
        f"{sandbox_server.url}atservicesrest/v1.0/zoneInformation",
        params={"user": api_user.username.upper()},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    zone = response.json()
    assert set(zone) == {"zoneName", "url", "webUrl", "ci"}
    assert zone["url"] == f"{sandbox_server.url}atservicesrest/"
    assert isinstance(zone["ci"], int)
    # Clients append the version to the zone url (django-autotask), and that must work.
    follow = requests.get(
        f"{zone['url']}v1.0/Companies/0", headers=auth_headers(api_user), timeout=10
    )
    assert follow.status_code == 200
    assert follow.json()["item"]["id"] == 0


@pytest.mark.parametrize("user", ["", "someone-else@example.com"], ids=["blank", "unknown"])
def test_zone_information_for_a_blank_or_unknown_user_is_a_500(
    sandbox_server: Any, user: str
) -> None:
    response = requests.get(
        f"{sandbox_server.url}atservicesrest/v1.0/zoneInformation",
        params={"user": user},
        timeout=10,
    )
    errors_of(response)


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"Secret": "wrong-secret"}, 401),
        ({"UserName": "nobody@sandbox.test"}, 500),
        ({"ApiIntegrationCode": "UNKNOWNTRACKINGID000000000X"}, 500),
    ],
    ids=["wrong-secret-401", "unknown-user-500", "unknown-integration-code-500"],
)
def test_bad_credentials_answer_as_autotask_does(
    rest: RestClient, override: dict[str, str], status: int
) -> None:
    response = rest.get("Companies/0", headers=override)
    errors_of(response, status)


@pytest.mark.parametrize(
    ("missing", "status"),
    [("UserName", 500), ("Secret", 401), ("ApiIntegrationCode", 500)],
    ids=["no-user-500", "no-secret-401", "no-integration-code-500"],
)
def test_missing_credentials_are_refused(
    sandbox_server: Any, api_user: ApiUser, missing: str, status: int
) -> None:
    headers = {k: v for k, v in auth_headers(api_user).items() if k != missing}
    url = f"{sandbox_server.url}atservicesrest/v1.0/Companies/0"
    errors_of(requests.get(url, headers=headers, timeout=10), status)


@pytest.mark.parametrize(
    "names",
    [
        ("username", "secret", "apiintegrationcode"),
        ("USERNAME", "SECRET", "APIINTEGRATIONCODE"),
        ("Username", "Secret", "APIIntegrationcode"),  # n8n-nodes-autotask's spelling
    ],
    ids=["lower", "upper", "n8n"],
)
def test_auth_header_names_are_case_insensitive(
    sandbox_server: Any, api_user: ApiUser, names: tuple[str, str, str]
) -> None:
    headers = dict(
        zip(names, (api_user.username, api_user.secret, api_user.integration_code), strict=True)
    )
    response = requests.get(
        f"{sandbox_server.url}atservicesrest/v1.0/Companies/0", headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "prefix", ["ATServicesRest/V1.0", "atservicesrest/v1.0"], ids=["swagger", "lower"]
)
def test_both_path_casings_reach_the_api(
    rest: RestClient, sandbox_server: Any, api_user: ApiUser, prefix: str
) -> None:
    ticket_id = rest.create_ticket()
    url = f"{sandbox_server.url}{prefix}/Tickets/{ticket_id}"
    response = requests.get(url, headers=auth_headers(api_user), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["item"]["id"] == ticket_id
    created = requests.post(
        f"{sandbox_server.url}{prefix}/tickets",
        json=TICKET,
        headers=auth_headers(api_user),
        timeout=10,
    )
    assert created.status_code == 200, created.text


# -- ticket create ---------------------------------------------------------------------------


def test_create_answers_the_new_item_id(rest: RestClient) -> None:
    response = rest.post("Tickets", json=TICKET)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["itemId"]
    assert isinstance(body["itemId"], int)
    second = rest.post("Tickets", json=TICKET).json()["itemId"]
    assert second == body["itemId"] + 1


@pytest.mark.parametrize("field", ["companyID", "title", "status", "priority"])
def test_create_without_a_required_field_names_it(rest: RestClient, field: str) -> None:
    body = {k: v for k, v in TICKET.items() if k != field}
    errors = errors_of(rest.post("Tickets", json=body))
    assert any(field in message for message in errors), errors


@pytest.mark.parametrize(
    ("field", "limit"), [("title", 255), ("description", 8000)], ids=["title", "description"]
)
def test_create_refuses_text_longer_than_the_field(
    rest: RestClient, field: str, limit: int
) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {field: "x" * (limit + 1)}))
    # Real wording, without the limit (n8n-nodes-autotask #48, autotask-api.md §14).
    assert f"String value exceeds maximum length (field:{field})." in errors, errors
    ticket_id = rest.create_ticket(**{field: "x" * limit})
    assert get_ticket(rest, ticket_id)[field] == "x" * limit


def test_create_refuses_an_unknown_company(rest: RestClient) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {"companyID": 12345}))
    assert any("companyID" in message for message in errors), errors


def test_create_accepts_company_zero_the_msps_own(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(companyID=0)
    assert get_ticket(rest, ticket_id)["companyID"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", 99),
        ("status", 14),  # a picklist value that exists but is inactive
        ("priority", 0),
        ("queueID", 1),
        ("issueType", 3),
        ("ticketCategory", 99),
        ("ticketType", 99),
        ("source", 99),
    ],
    ids=lambda v: str(v),
)
def test_create_refuses_a_value_outside_the_picklist(
    rest: RestClient, field: str, value: int
) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {field: value}))
    assert any(field in message and str(value) in message for message in errors), errors


def test_sub_issue_type_must_belong_to_the_issue_type(rest: RestClient) -> None:
    # 401 "Service stopped" belongs to issue type 4 "Software", not 2 "Hardware".
    errors = errors_of(rest.post("Tickets", json=TICKET | {"issueType": 2, "subIssueType": 401}))
    assert any("subIssueType" in message for message in errors), errors
    ticket_id = rest.create_ticket(issueType=2, subIssueType=201)
    ticket = get_ticket(rest, ticket_id)
    assert (ticket["issueType"], ticket["subIssueType"]) == (2, 201)


def test_create_with_an_explicit_null_is_a_500(rest: RestClient) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {"description": None}))
    assert any("description" in message for message in errors), errors


def test_property_names_are_case_insensitive(rest: RestClient) -> None:
    # The OFFICIAL Postman sample sends "QueueID" (autotask-api.md §3).
    body = {"CompanyID": COMPANY, "TITLE": "Case", "Status": 1, "priority": 2, "QueueID": 5}
    response = rest.post("Tickets", json=body)
    assert response.status_code == 200, response.text
    ticket = get_ticket(rest, response.json()["itemId"])
    assert (ticket["companyID"], ticket["title"], ticket["queueID"]) == (COMPANY, "Case", 5)


def test_read_only_fields_are_ignored_on_create(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(
        createDate="2001-01-01T00:00:00Z",
        completedDate="2001-01-02T00:00:00Z",
        creatorResourceID=1,
        lastActivityDate="2001-01-03T00:00:00Z",
        id=0,
    )
    ticket = get_ticket(rest, ticket_id)
    assert not ticket["createDate"].startswith("2001")
    assert ticket["completedDate"] is None
    assert ticket["creatorResourceID"] != 1
    assert not ticket["lastActivityDate"].startswith("2001")


def test_create_refuses_an_id(rest: RestClient) -> None:
    errors_of(rest.post("Tickets", json=TICKET | {"id": 5}))


def test_unknown_property_is_refused_in_strict_mode(rest: RestClient) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {"queueId2": 5}))
    assert any("queueId2" in message for message in errors), errors


def test_unknown_property_is_ignored_when_not_strict(api_user: ApiUser) -> None:
    sandbox = Sandbox(SandboxConfig(user=api_user, strict_properties=False))
    client = create_sandbox_app(sandbox).test_client()
    response = client.post(
        "/atservicesrest/v1.0/Tickets",
        json=TICKET | {"queueId2": 5},
        headers=auth_headers(api_user),
    )
    assert response.status_code == 200, response.text
    ticket = sandbox.service.get("Tickets", response.get_json()["itemId"])
    assert ticket is not None
    assert "queueId2" not in ticket


def test_create_refuses_a_body_that_is_not_json(rest: RestClient) -> None:
    errors_of(rest.post("Tickets", data="{not json"))


def test_create_refuses_a_resource_without_its_role(rest: RestClient) -> None:
    errors = errors_of(rest.post("Tickets", json=TICKET | {"assignedResourceID": 29682885}))
    assert any("assignedResourceRoleID" in message for message in errors), errors


# -- ticket read ---------------------------------------------------------------------------------


def test_get_ticket_has_every_model_property_and_server_set_values(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(description="/var at 95%", queueID=29682833)
    response = rest.get(f"Tickets/{ticket_id}")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["item"]
    ticket = body["item"]
    assert set(ticket) == set(TICKET_MODEL)
    assert ticket["id"] == ticket_id
    assert ticket["description"] == "/var at 95%"
    assert ticket["dueDateTime"] is None
    assert ticket["userDefinedFields"] == []
    assert re.fullmatch(r"T\d{8}\.\d{4}", ticket["ticketNumber"]), ticket["ticketNumber"]
    created = parse_datetime(ticket["createDate"])
    assert ticket["ticketNumber"][1:9] == created.strftime("%Y%m%d")
    assert ticket["creatorResourceID"] is not None


def test_ticket_numbers_are_unique(rest: RestClient) -> None:
    numbers = {get_ticket(rest, rest.create_ticket())["ticketNumber"] for _ in range(3)}
    assert len(numbers) == 3


def test_get_missing_ticket_answers_a_null_item(rest: RestClient) -> None:
    response = rest.get("Tickets/999999999")
    assert response.status_code == 200
    assert response.json() == {"item": None}


# -- ticket update -------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(description="first", queueID=5, externalID="alert-1")
    before = get_ticket(rest, ticket_id)
    response = rest.patch("Tickets", json={"id": ticket_id, "title": "Renamed", "priority": 1})
    assert response.status_code == 200, response.text
    assert response.json() == {"itemId": ticket_id}
    after = get_ticket(rest, ticket_id)
    changed = {k for k in after if after[k] != before[k]}
    assert changed <= {"title", "priority", "lastActivityDate", "lastTrackedModificationDateTime"}
    assert (after["title"], after["priority"]) == ("Renamed", 1)


def test_patch_with_null_clears_an_optional_field(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(description="first", externalID="alert-1")
    response = rest.patch("Tickets", json={"id": ticket_id, "description": None})
    assert response.status_code == 200, response.text
    ticket = get_ticket(rest, ticket_id)
    assert ticket["description"] is None
    assert ticket["externalID"] == "alert-1"


def test_patch_cannot_clear_a_required_field(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    errors = errors_of(rest.patch("Tickets", json={"id": ticket_id, "title": None}))
    assert any("title" in message for message in errors), errors
    assert get_ticket(rest, ticket_id)["title"] == TICKET["title"]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_of_a_missing_ticket_is_refused(rest: RestClient, method: str) -> None:
    errors_of(rest.request(method, "Tickets", json=TICKET | {"id": 999999999}))


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_without_an_id_is_refused(rest: RestClient, method: str) -> None:
    errors_of(rest.request(method, "Tickets", json=TICKET))


def test_put_nulls_the_writable_fields_it_omits(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(description="first", queueID=5, externalID="alert-1")
    before = get_ticket(rest, ticket_id)
    response = rest.put("Tickets", json=TICKET | {"id": ticket_id, "title": "Replaced"})
    assert response.status_code == 200, response.text
    after = get_ticket(rest, ticket_id)
    assert after["title"] == "Replaced"
    # Cleared: description reads back null, externalID "" (values.NULL_WHEN_UNSET: the real
    # Ticket answers in trepidity/autotask_ruby query_ticket_response.xml).
    assert (after["description"], after["queueID"], after["externalID"]) == (None, None, "")
    # Read-only, server-set values survive a PUT.
    assert after["createDate"] == before["createDate"]
    assert after["creatorResourceID"] == before["creatorResourceID"]


def test_put_without_a_required_field_is_refused(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    body = {"id": ticket_id, "companyID": COMPANY, "title": "x", "status": 1}
    errors = errors_of(rest.put("Tickets", json=body))
    assert any("priority" in message for message in errors), errors


def test_completed_date_follows_the_complete_status(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    assert get_ticket(rest, ticket_id)["completedDate"] is None
    rest.patch("Tickets", json={"id": ticket_id, "status": 5}).raise_for_status()
    completed = get_ticket(rest, ticket_id)["completedDate"]
    assert completed is not None
    parse_datetime(completed)
    rest.patch("Tickets", json={"id": ticket_id, "title": "still done"}).raise_for_status()
    assert get_ticket(rest, ticket_id)["completedDate"] == completed
    rest.patch("Tickets", json={"id": ticket_id, "status": 1}).raise_for_status()
    assert get_ticket(rest, ticket_id)["completedDate"] is None


def test_a_ticket_created_complete_has_a_completed_date(rest: RestClient) -> None:
    ticket_id = rest.create_ticket(status=5)
    assert get_ticket(rest, ticket_id)["completedDate"] is not None


# -- routes Autotask does not have -----------------------------------------------------------


def test_delete_is_not_supported(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    response = rest.request("DELETE", f"Tickets/{ticket_id}")
    assert response.status_code == 405
    assert response.json() == {
        "Message": "The requested resource does not support http method 'DELETE'."
    }
    assert get_ticket(rest, ticket_id)["id"] == ticket_id


def test_post_to_root_ticket_notes_is_not_found(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    response = rest.post("TicketNotes", json=NOTE | {"ticketID": ticket_id})
    assert response.status_code == 404
    assert rest.get(f"Tickets/{ticket_id}/Notes").json()["items"] == []


# -- notes ---------------------------------------------------------------------------------------


def test_note_create_and_read(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    response = rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE | {"title": "Acknowledged"})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["itemId"]
    note_id = response.json()["itemId"]
    item = rest.get(f"Tickets/{ticket_id}/Notes/{note_id}").json()["item"]
    assert set(item) == set(NOTE_MODEL) - {"soapParentPropertyId"}
    assert item["ticketID"] == ticket_id
    assert item["title"] == "Acknowledged"
    assert item["description"] == NOTE["description"]
    parse_datetime(item["createDateTime"])
    assert rest.get(f"TicketNotes/{note_id}").json()["item"] == item


@pytest.mark.parametrize("field", ["description", "noteType", "publish"])
def test_note_without_a_required_field_names_it(rest: RestClient, field: str) -> None:
    ticket_id = rest.create_ticket()
    body = {k: v for k, v in NOTE.items() if k != field}
    errors = errors_of(rest.post(f"Tickets/{ticket_id}/Notes", json=body))
    assert any(field in message for message in errors), errors


@pytest.mark.parametrize(
    ("field", "limit"), [("title", 250), ("description", 32000)], ids=["title", "description"]
)
def test_note_text_lengths(rest: RestClient, field: str, limit: int) -> None:
    ticket_id = rest.create_ticket()
    path = f"Tickets/{ticket_id}/Notes"
    errors = errors_of(rest.post(path, json=NOTE | {field: "n" * (limit + 1)}))
    assert f"String value exceeds maximum length (field:{field})." in errors, errors
    assert rest.post(path, json=NOTE | {field: "n" * limit}).status_code == 200


def test_note_bad_picklist_value_is_refused(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    errors = errors_of(rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE | {"noteType": 99}))
    assert any("noteType" in message for message in errors), errors


def test_note_ticket_id_comes_from_the_url(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    path = f"Tickets/{ticket_id}/Notes"
    without = rest.post(path, json=NOTE).json()["itemId"]
    matching = rest.post(path, json=NOTE | {"TicketID": ticket_id}).json()["itemId"]
    for note_id in (without, matching):
        assert rest.get(f"TicketNotes/{note_id}").json()["item"]["ticketID"] == ticket_id
    other = rest.create_ticket()
    errors = errors_of(rest.post(path, json=NOTE | {"ticketID": other}))
    assert any("ticketID" in message for message in errors), errors


def test_note_on_an_unknown_ticket_is_refused(rest: RestClient) -> None:
    errors = errors_of(rest.post("Tickets/999999999/Notes", json=NOTE))
    assert any("ticketID" in message for message in errors), errors


def test_notes_list_and_read_by_ticket(rest: RestClient) -> None:
    ticket_id, other_id = rest.create_ticket(), rest.create_ticket()
    ids = [
        rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE | {"description": f"note {n}"}).json()[
            "itemId"
        ]
        for n in range(3)
    ]
    rest.post(f"Tickets/{other_id}/Notes", json=NOTE).raise_for_status()
    listing = rest.get(f"Tickets/{ticket_id}/Notes").json()
    assert [item["id"] for item in listing["items"]] == ids
    assert [item["description"] for item in listing["items"]] == ["note 0", "note 1", "note 2"]
    assert listing["pageDetails"]["count"] == 3
    assert listing["pageDetails"]["nextPageUrl"] is None
    # A note read under the wrong ticket is not found.
    assert rest.get(f"Tickets/{other_id}/Notes/{ids[0]}").json() == {"item": None}
    query = {"filter": [{"op": "eq", "field": "ticketID", "value": ticket_id}]}
    found = rest.post("TicketNotes/query", json=query).json()["items"]
    assert [item["id"] for item in found] == ids


def test_note_patch_changes_only_the_fields_sent(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    path = f"Tickets/{ticket_id}/Notes"
    note_id = rest.post(path, json=NOTE | {"title": "Old"}).json()["itemId"]
    response = rest.patch(path, json={"id": note_id, "title": "New"})
    assert response.status_code == 200, response.text
    assert response.json() == {"itemId": note_id}
    item = rest.get(f"{path}/{note_id}").json()["item"]
    assert (item["title"], item["description"]) == ("New", NOTE["description"])
    other = rest.create_ticket()
    errors_of(rest.patch(f"Tickets/{other}/Notes", json={"id": note_id, "title": "Hijack"}))
    assert rest.get(f"{path}/{note_id}").json()["item"]["title"] == "New"


# -- companies -----------------------------------------------------------------------------------


def test_companies_query_and_read(rest: RestClient) -> None:
    everything = rest.post("Companies/query", json={"filter": [{"op": "exist", "field": "id"}]})
    assert everything.status_code == 200, everything.text
    ids = [item["id"] for item in everything.json()["items"]]
    assert 0 in ids and COMPANY in ids
    by_name = rest.post(
        "Companies/query",
        json={"filter": [{"op": "eq", "field": "CompanyName", "value": "contoso ltd"}]},
    ).json()["items"]
    assert [item["id"] for item in by_name] == [COMPANY]
    item = rest.get(f"Companies/{COMPANY}").json()["item"]
    assert item["companyName"] == "Contoso Ltd"
    assert set(item) == set(SWAGGER["definitions"]["CompanyModel"]["properties"])


# -- entity information ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "can_create", "udfs"),
    [("Tickets", True, True), ("TicketNotes", True, False), ("Companies", False, True)],
    ids=["Tickets", "TicketNotes", "Companies"],
)
def test_entity_information(rest: RestClient, entity: str, can_create: bool, udfs: bool) -> None:
    info = rest.get(f"{entity}/entityInformation").json()["info"]
    assert info["canCreate"] is can_create
    assert info["canQuery"] is True
    assert info["canDelete"] is False
    assert info["hasUserDefinedFields"] is udfs


def _fields(rest: RestClient, entity: str) -> dict[str, dict[str, Any]]:
    response = rest.get(f"{entity}/entityInformation/fields")
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()["fields"]}


@pytest.mark.parametrize(
    "field",
    [
        "status",
        "priority",
        "queueID",
        "issueType",
        "subIssueType",
        "ticketCategory",
        "ticketType",
        "source",
    ],
)
def test_ticket_picklists_carry_string_values(rest: RestClient, field: str) -> None:
    row = _fields(rest, "Tickets")[field]
    assert row["isPickList"] is True
    assert row["dataType"] == "integer"
    values = row["picklistValues"]
    assert values, field
    for value in values:
        assert isinstance(value["value"], str)
        assert str(int(value["value"])) == value["value"]
        assert isinstance(value["label"], str) and value["label"]
        assert isinstance(value["isActive"], bool)


def test_known_picklist_values(rest: RestClient) -> None:
    fields = _fields(rest, "Tickets")

    def labels(field: str) -> dict[str, str]:
        return {v["value"]: v["label"] for v in fields[field]["picklistValues"]}

    assert labels("status")["1"] == "New"
    assert labels("status")["5"] == "Complete"
    assert labels("priority")["1"] == "High"
    assert labels("queueID")["5"] == "Client Portal"


def test_sub_issue_types_name_their_parent_issue_type(rest: RestClient) -> None:
    fields = _fields(rest, "Tickets")
    row = fields["subIssueType"]
    assert row["picklistParentValueField"] == "issueType"
    issue_types = {v["value"] for v in fields["issueType"]["picklistValues"]}
    assert all(v["parentValue"] in issue_types for v in row["picklistValues"])


def test_ticket_fields_carry_required_flags_and_lengths(rest: RestClient) -> None:
    fields = _fields(rest, "Tickets")
    assert {name for name, row in fields.items() if row["isRequired"] and name != "id"} == {
        "companyID",
        "title",
        "status",
        "priority",
    }
    assert (fields["title"]["length"], fields["description"]["length"]) == (255, 8000)
    assert fields["createDate"]["isReadOnly"] is True
    assert fields["creatorType"]["isQueryable"] is False


@pytest.mark.parametrize("field", ["noteType", "publish"])
def test_note_picklists(rest: RestClient, field: str) -> None:
    row = _fields(rest, "TicketNotes")[field]
    assert row["isPickList"] is True
    assert row["isRequired"] is True
    assert "1" in {v["value"] for v in row["picklistValues"]}


def test_user_defined_fields_list(rest: RestClient) -> None:
    response = rest.get("Tickets/entityInformation/userDefinedFields")
    assert response.status_code == 200
    assert response.json() == {"fields": []}


# -- meta ----------------------------------------------------------------------------------------


def test_threshold_information_counts_requests(rest: RestClient, sandbox_server: Any) -> None:
    first = rest.get("ThresholdInformation").json()
    assert first == {
        "externalRequestThreshold": 10000,
        "requestThresholdTimeframe": 60,
        "currentTimeframeRequestCount": 1,
    }
    rest.get("Companies/0").raise_for_status()
    # Zone lookups are not counted.
    zone = f"{sandbox_server.url}atservicesrest/v1.0/zoneInformation"
    requests.get(zone, params={"user": "x"}, timeout=10)
    assert rest.get("ThresholdInformation").json()["currentTimeframeRequestCount"] == 3


def test_version_information(rest: RestClient, sandbox_server: Any, api_user: ApiUser) -> None:
    versions = requests.get(
        f"{sandbox_server.url}atservicesrest/VersionInformation",
        headers=auth_headers(api_user),
        timeout=10,
    )
    assert versions.status_code == 200, versions.text
    assert versions.json() == {"apiVersions": ["1.0"]}
    version = rest.get("Version").json()
    assert set(version) == {"majorVersion", "minorVersion", "build"}
    assert all(isinstance(value, str) for value in version.values())
