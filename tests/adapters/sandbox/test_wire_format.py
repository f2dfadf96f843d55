"""The sandbox answers in Autotask's wire form: unset strings as "", date-times in varying forms.

Every expectation names the real answer it copies: the Ticket query answers in
trepidity/autotask_ruby spec/fixtures/query_ticket_response.xml (SOAP, tickets 9136 and 9137),
the Company in the apigrate/autotask-restapi README (REST), and django-autotask's fixtures.
Reference: ../shared/reference/autotask-api.md §3, §4, §10 and §12.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.sandbox import ApiUser, Sandbox
from adapters.sandbox.server import SandboxServer
from adapters.sandbox.values import parse_datetime, wire_datetime
from tests.adapters.sandbox.test_soap import SoapClient, field, queryxml
from tests.conftest import RestClient

#: A fixed server clock, so server-set date-times are reproducible.
NOW = datetime(2024, 5, 1, 10, 20, 30, 113_000, tzinfo=UTC)

TRE = "trepidity/autotask_ruby query_ticket_response.xml"
APIGRATE = "apigrate/autotask-restapi README Company"


@pytest.fixture
def fixed_clock(sandbox: Sandbox) -> datetime:
    """Stamp every server-set date-time with NOW."""
    sandbox.service.clock = lambda: NOW
    return NOW


@pytest.fixture
def soap(sandbox_server: SandboxServer, api_user: ApiUser) -> SoapClient:
    """A SOAP client for the running sandbox."""
    return SoapClient(sandbox_server, api_user)


def item(rest: RestClient, path: str) -> dict[str, Any]:
    response = rest.get(path)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["item"]
    return found


# -- unset strings ---------------------------------------------------------------------------


TICKET_UNSET = [
    # (property, read back when never set, source)
    ("resolution", "", f"{TRE}: <Resolution xsi:type='xsd:string'/>"),
    ("purchaseOrderNumber", "", f"{TRE}: <PurchaseOrderNumber .../>"),
    ("changeInfoField1", "", f"{TRE}: <ChangeInfoField1 .../>"),
    ("changeInfoField5", "", f"{TRE}: <ChangeInfoField5 .../>"),
    ("externalID", "", f"{TRE}: <ExternalID xsi:type='xsd:string'/>"),
    ("description", None, f"{TRE}: ticket 9136 has no Description element"),
    ("queueID", None, f"{APIGRATE}: unset integers are null (apiVendorID)"),
    ("dueDateTime", None, f"{TRE}: unset date-times are left out (null)"),
]


@pytest.mark.parametrize(
    ("prop", "expected", "source"), TICKET_UNSET, ids=[r[0] for r in TICKET_UNSET]
)
def test_a_ticket_reads_back_unset_fields_as_autotask_does(
    rest: RestClient, prop: str, expected: object, source: str
) -> None:
    ticket_id = rest.create_ticket()
    assert item(rest, f"Tickets/{ticket_id}")[prop] == expected, source


COMPANY_UNSET = [
    ("city", "", APIGRATE),
    ("fax", "", APIGRATE),
    ("taxID", "", APIGRATE),
    ("address1", None, APIGRATE),
    ("webAddress", None, APIGRATE),
    ("parentCompanyID", None, APIGRATE),
]


@pytest.mark.parametrize(
    ("prop", "expected", "source"), COMPANY_UNSET, ids=[r[0] for r in COMPANY_UNSET]
)
def test_a_company_reads_back_unset_fields_as_autotask_does(
    rest: RestClient, prop: str, expected: object, source: str
) -> None:
    assert item(rest, "Companies/29683414")[prop] == expected, source


def test_queries_and_notes_answer_in_the_wire_form_too(rest: RestClient) -> None:
    ticket_id = rest.create_ticket()
    query = {"filter": [{"op": "eq", "field": "id", "value": ticket_id}]}
    [found] = rest.post("Tickets/query", json=query).json()["items"]
    assert found["externalID"] == "" and found["description"] is None  # TRE
    # TicketNote titles: no recorded answer; the general rule (unset strings are "") applies.
    response = rest.post(
        f"Tickets/{ticket_id}/Notes", json={"description": "x", "noteType": 1, "publish": 1}
    )
    note_id = response.json()["itemId"]
    assert item(rest, f"Tickets/{ticket_id}/Notes/{note_id}")["title"] == ""


def test_soap_answers_an_unset_string_as_an_empty_element(soap: SoapClient) -> None:
    ticket_id = soap.create_ticket()
    reply = soap.query(queryxml("Ticket", field("id", "equals", str(ticket_id))))
    [ticket] = reply.entities
    # TRE: `<ExternalID xsi:type="xsd:string"/>` present and empty; Description absent (9136).
    assert ticket["ExternalID"] == "" and ticket["Resolution"] == ""
    assert "Description" not in ticket


def test_the_stored_record_keeps_none(rest: RestClient, sandbox: Sandbox) -> None:
    """The wire form is only how answers look; /_sandbox/tickets and the state keep None."""
    ticket_id = rest.create_ticket()
    assert sandbox.state.get("Tickets", ticket_id)["externalID"] is None


# -- date-times out --------------------------------------------------------------------------


WIRE_DATETIMES = [
    # (record id, stored, server-set, answered, source of the form)
    (0, "2024-05-01T10:20:30.113Z", True, "2024-05-01T10:20:30Z", "whole seconds: TRE DueDateTime"),
    (1, "2024-05-01T10:20:30.113Z", True, "2024-05-01T10:20:30", f"{APIGRATE} lastActivityDate"),
    (2, "2024-05-01T10:20:30.240Z", True, "2024-05-01T10:20:30.2Z", "one digit, .NET trims zeros"),
    (4, "2024-05-01T10:20:30.240Z", True, "2024-05-01T10:20:30.24Z", "TRE LastActivityDate .24"),
    (7, "2018-07-24T19:14:09.953Z", True, "2018-07-24T19:14:09.953", "TRE CreateDate, no zone"),
    (14, "2024-05-01T10:20:30.113Z", True, "2024-05-01T10:20:30.113Z", "django-autotask .000Z"),
    (15, "2016-03-30T13:10:35.563Z", True, "2016-03-30T13:10:35.563", f"{APIGRATE} createDate"),
    (14, "2024-05-01T10:20:30.000Z", True, "2024-05-01T10:20:30Z", ".NET drops .000"),
    # A client's own value keeps every millisecond, whatever the record id.
    (0, "2030-03-21T09:00:00.500Z", False, "2030-03-21T09:00:00.5Z", "client-written: lossless"),
    (1, "2030-03-21T09:00:00.000Z", False, "2030-03-21T09:00:00", "TRE DueDateTime"),
]


@pytest.mark.parametrize(
    ("record_id", "stored", "server_set", "answered", "source"),
    WIRE_DATETIMES,
    ids=[f"{r[0]}-{r[3]}" for r in WIRE_DATETIMES],
)
def test_wire_datetime_forms(
    record_id: int, stored: str, server_set: bool, answered: str, source: str
) -> None:
    assert wire_datetime(stored, record_id, server_set=server_set) == answered, source
    # Whatever the form, it is the same instant at the precision it shows.
    assert parse_datetime(answered) <= parse_datetime(stored)


def test_consecutive_tickets_show_every_form(rest: RestClient, fixed_clock: datetime) -> None:
    ids = [rest.create_ticket() for _ in range(8)]
    dates = [item(rest, f"Tickets/{i}")["createDate"] for i in ids]
    # Eight consecutive ids cycle through no fraction, 1, 2 and 3 digits, with and without Z.
    assert sorted(dates) == sorted(
        [
            "2024-05-01T10:20:30Z",
            "2024-05-01T10:20:30",
            "2024-05-01T10:20:30.1Z",
            "2024-05-01T10:20:30.1",
            "2024-05-01T10:20:30.11Z",
            "2024-05-01T10:20:30.11",
            "2024-05-01T10:20:30.113Z",
            "2024-05-01T10:20:30.113",
        ]
    )
    # Deterministic: the same ticket answers the same form every time.
    assert [item(rest, f"Tickets/{i}")["createDate"] for i in ids] == dates


def test_one_record_shares_one_form_so_its_dates_keep_their_order(
    rest: RestClient, sandbox: Sandbox, fixed_clock: datetime
) -> None:
    ids = [rest.create_ticket() for _ in range(8)]  # every form (see above)
    later = NOW.replace(microsecond=900_000)
    sandbox.service.clock = lambda: later
    for ticket_id in ids:
        rest.patch("Tickets", json={"id": ticket_id, "priority": 3}).raise_for_status()
        ticket = item(rest, f"Tickets/{ticket_id}")
        created, touched = ticket["createDate"], ticket["lastActivityDate"]
        assert parse_datetime(created) <= parse_datetime(touched), (created, touched)


# -- date-times in ---------------------------------------------------------------------------


INCOMING = [
    # (as sent, source of the form)
    ("2030-03-21T00:00:00", "official Postman 'Create a Ticket' dueDateTime"),
    ("2030-03-21T00:00:00Z", "connector rendering.wire_datetime"),
    ("2030-03-21T00:00:00.2Z", "a wire form the sandbox answers"),
    ("2030-03-21T00:00:00.113", "apigrate createDate form"),
    ("2030-03-21T00:00:00.000Z", "django-autotask fixtures"),
    ("2030-03-21T00:00:00.0000000Z", ".NET round-trip format, seven digits"),
    ("2030-03-21T02:00:00+02:00", "ISO 8601 offset"),
    ("2030-03-21T00:00:00z", "lower-case zone"),
]


@pytest.mark.parametrize(("sent", "source"), INCOMING, ids=[r[0] for r in INCOMING])
def test_every_form_is_accepted_in_writes_and_queries(
    rest: RestClient, sent: str, source: str
) -> None:
    ticket_id = rest.create_ticket(dueDateTime=sent)
    stored = parse_datetime(item(rest, f"Tickets/{ticket_id}")["dueDateTime"])
    assert stored == parse_datetime(sent), source
    query = {
        "filter": [
            {"op": "eq", "field": "id", "value": ticket_id},
            {"op": "gte", "field": "dueDateTime", "value": sent},
        ]
    }
    response = rest.post("Tickets/query", json=query)
    assert response.status_code == 200, response.text
    assert [found["id"] for found in response.json()["items"]] == [ticket_id], source


def test_soap_accepts_a_naive_date_time(soap: SoapClient, rest: RestClient) -> None:
    # The real SOAP answers carry no zone (TRE `2018-07-26T09:00:00`); read as UTC.
    ticket_id = soap.create_ticket(DueDateTime="2018-07-26T09:00:00")
    due = item(rest, f"Tickets/{ticket_id}")["dueDateTime"]
    assert parse_datetime(due) == datetime(2018, 7, 26, 9, tzinfo=UTC)


def test_a_ticket_read_back_can_be_put_back_unchanged(rest: RestClient) -> None:
    """Everything the sandbox answers it also accepts: "" strings and every date-time form."""
    ticket_id = rest.create_ticket(dueDateTime="2030-03-21T09:00:00.5Z", queueID=5)
    before = item(rest, f"Tickets/{ticket_id}")
    response = rest.put("Tickets", json=before)
    assert response.status_code == 200, response.text
    after = item(rest, f"Tickets/{ticket_id}")
    changed = {k for k in before if before[k] != after[k]}
    assert changed <= {"lastActivityDate", "lastTrackedModificationDateTime"}, changed
