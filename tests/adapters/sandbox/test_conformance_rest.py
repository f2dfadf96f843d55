"""Everything the sandbox's REST face accepts and answers conforms to the real Swagger models.

The Swagger 2.0 document autotask-rest-swagger-v1.0.SergLGP-2022.json (tests/fixtures/autotask/
specs/) is turned into a strict JSON Schema registry:

- object schemas with properties refuse unknown property names (`additionalProperties: false`);
- every property may be null: the real API returns null for unset fields (autotask-api.md §3-§4)
  and Swagger 2.0 cannot say so;
- `Object` (Swagger's stand-in for .NET `object`, e.g. `OperationResultModel.itemId`) is any value,
  `RestUserAccessLevel` (an enum the generator rendered as an empty object) a string or number,
  and `Filter.value` what its description says: an integer, string, boolean or array of them;
- formats are checked: int32 and int64 ranges, and date-times in the forms Autotask sends.

Each operation's 200 response is validated against the schema the Swagger path lists for it, and
each accepted request body against the operation's body parameter. Request property names are
matched case-insensitively first, as Autotask's JSON binder matches them (autotask-api.md §3).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from adapters.sandbox import ApiUser, Sandbox
from tests.conftest import SPECS, RestClient

SWAGGER: dict[str, Any] = json.loads(
    (SPECS / "autotask-rest-swagger-v1.0.SergLGP-2022.json").read_text(encoding="utf-8")
)
SWAGGER_URI = "urn:autotask:rest-swagger-v1.0"

# -- the strict schema -----------------------------------------------------------------------


def _tighten(schema: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    """Return `schema` closed to unknown properties, its properties nullable."""
    if "$ref" in schema:
        ref = {"$ref": schema["$ref"]}
        return {"anyOf": [ref, {"type": "null"}]} if nullable else ref
    tight = dict(schema)
    if tight.get("type") == "object" and tight.get("properties"):
        tight["properties"] = {
            name: _tighten(prop, nullable=True) for name, prop in tight["properties"].items()
        }
        tight["additionalProperties"] = False
    if tight.get("type") == "array" and "items" in tight:
        tight["items"] = _tighten(tight["items"], nullable=False)
    if nullable and isinstance(tight.get("type"), str):
        tight["type"] = [tight["type"], "null"]
        if "enum" in tight:
            tight["enum"] = [*tight["enum"], None]
    return tight


def strict_swagger(swagger: dict[str, Any]) -> dict[str, Any]:
    """The Swagger document with strict `definitions` (see the module docstring)."""
    document = copy.deepcopy(swagger)
    definitions = document["definitions"]
    for name, schema in definitions.items():
        definitions[name] = _tighten(schema, nullable=False)
    definitions["Object"] = {}
    definitions["RestUserAccessLevel"] = {"type": ["string", "integer"]}
    definitions["Filter"]["properties"]["value"] = {
        "type": ["integer", "string", "boolean", "array"],
        "items": {"type": ["integer", "string", "boolean"]},
    }
    return document


FORMATS = FormatChecker(formats=())

#: The date-time forms Autotask sends: `2016-03-30T13:10:35.563` and `2019-08-18T01:00:00.000Z`.
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?")


def _integer_in(bits: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return True  # the type keyword judges other types
        return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

    return check


FORMATS.checks("int32")(_integer_in(32))
FORMATS.checks("int64")(_integer_in(64))


@FORMATS.checks("double")
def _double(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


REGISTRY: Registry[Any] = Registry().with_resource(
    SWAGGER_URI, DRAFT202012.create_resource(strict_swagger(SWAGGER))
)


@cache
def validator(ref: str) -> Draft202012Validator:
    """A validator for `#/definitions/…` of the strict Swagger document."""
    return Draft202012Validator(
        {"$ref": f"{SWAGGER_URI}{ref}"}, registry=REGISTRY, format_checker=FORMATS
    )


def _pointer(error: ValidationError) -> str:
    """The RFC 6901 pointer to the failing value ("" is the whole body)."""
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
    )


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors under a nullable wrapper's non-null branch, where the real problem is."""
    if error.validator == "anyOf" and error.context:
        branch = [e for e in error.context if list(e.relative_schema_path)[:1] == [0]]
        if branch:
            return [leaf for e in branch for leaf in _leaves(e)]
    return [error]


def problems(instance: Any, ref: str) -> list[str]:
    """Every way `instance` fails the schema at `ref`, as 'JSON pointer: message' lines."""
    errors = [leaf for e in validator(ref).iter_errors(instance) for leaf in _leaves(e)]
    errors.sort(key=lambda e: [str(part) for part in e.absolute_path])
    return [f"{_pointer(error) or '(root)'}: {error.message[:300]}" for error in errors]


def assert_conforms(instance: Any, ref: str, where: str) -> None:
    found = problems(instance, ref)
    if found:
        lines = "\n  ".join(found)
        pytest.fail(f"{where} does not conform to {ref}:\n  {lines}", pytrace=False)


# -- finding an operation's schemas ------------------------------------------------------------

#: Swagger path templates as (regex, number of parameters, template), literal paths first.
_TEMPLATES = sorted(
    (
        (
            re.compile(
                re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$", re.IGNORECASE
            ),
            template.count("{"),
            template,
        )
        for template in SWAGGER["paths"]
    ),
    key=lambda row: row[1],
)

#: Keyset paging's `…/query/next` is not in the Swagger document; it answers further pages of
#: the query it continues, so it is held to that query's schemas.
_NEXT = re.compile(r"/query/next$", re.IGNORECASE)


def find_operation(method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The Swagger path template and operation serving `method url` (case-insensitive)."""
    path = urlsplit(url).path
    prefix = SWAGGER["basePath"]
    assert path.lower().startswith(prefix.lower()), path
    path = _NEXT.sub("/query", path[len(prefix) :])
    for pattern, _, template in _TEMPLATES:
        if pattern.match(path):
            operations = SWAGGER["paths"][template]
            assert method.lower() in operations, f"Swagger has no {method} {template}"
            return template, operations[method.lower()]
    raise AssertionError(f"no Swagger path matches {method} {path}")


def response_ref(operation: dict[str, Any]) -> str:
    schema = operation["responses"]["200"]["schema"]
    return str(schema["$ref"])


def body_ref(operation: dict[str, Any]) -> str | None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "body":
            return str(parameter["schema"]["$ref"])
    return None


def _definition(ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = SWAGGER["definitions"][ref.removeprefix("#/definitions/")]
    return schema


def canonical_names(instance: Any, schema: dict[str, Any]) -> Any:
    """`instance` with its property names spelt as the schema spells them (case-insensitive)."""
    if "$ref" in schema:
        schema = _definition(schema["$ref"])
    if isinstance(instance, dict) and schema.get("properties"):
        properties = schema["properties"]
        names = {name.lower(): name for name in properties}
        renamed = {}
        for key, value in instance.items():
            name = names.get(key.lower(), key)
            renamed[name] = canonical_names(value, properties.get(name, {}))
        return renamed
    if isinstance(instance, list) and "items" in schema:
        return [canonical_names(item, schema["items"]) for item in instance]
    return instance


def check_exchange(method: str, url: str, request_body: Any, response_body: Any) -> None:
    """Assert one accepted call's request body and 200 response conform to its operation."""
    template, operation = find_operation(method, url)
    where = f"{method} {urlsplit(url).path} (Swagger {template})"
    assert_conforms(response_body, response_ref(operation), f"response of {where}")
    ref = body_ref(operation)
    if request_body is not None:
        assert ref is not None, f"{where} takes no body"
        body = canonical_names(request_body, _definition(ref))
        assert_conforms(body, ref, f"request body of {where}")


# -- the validator itself --------------------------------------------------------------------


TICKET_ITEM = "#/definitions/ItemQueryResultModel[TicketModel,Ticket]"
TICKET_QUERY = "#/definitions/QueryActionResult[TicketModel,Ticket]"

NONCONFORMING = [
    ("unknown-property", {"item": {"id": 1, "bogus": 2}}, TICKET_ITEM, "/item"),
    ("int64-range", {"item": {"id": 2**63}}, TICKET_ITEM, "/item/id"),
    ("int32-range", {"item": {"status": 2**31}}, TICKET_ITEM, "/item/status"),
    ("type", {"item": {"title": 5}}, TICKET_ITEM, "/item/title"),
    ("date-time", {"item": {"createDate": "30/03/2016"}}, TICKET_ITEM, "/item/createDate"),
    (
        "nested-unknown-property",
        {"item": {"userDefinedFields": [{"name": "x", "v": 1}]}},
        TICKET_ITEM,
        "/item/userDefinedFields/0",
    ),
    (
        "paging-type",
        {"items": [], "pageDetails": {"count": "1"}},
        TICKET_QUERY,
        "/pageDetails/count",
    ),
    (
        "top-level-unknown-property",
        {"queryCount": 1, "count": 1},
        "#/definitions/QueryCountResultModel",
        "(root)",
    ),
    (
        "filter-value",
        {"filter": [{"op": "eq", "field": "id", "value": {"a": 1}}]},
        "#/definitions/QueryModel",
        "/filter/0/value",
    ),
]


@pytest.mark.parametrize(
    ("instance", "ref", "pointer"),
    [row[1:] for row in NONCONFORMING],
    ids=[row[0] for row in NONCONFORMING],
)
def test_the_validator_catches_nonconformance(instance: Any, ref: str, pointer: str) -> None:
    found = problems(instance, ref)
    assert any(line.startswith(f"{pointer}:") for line in found), found
    with pytest.raises(pytest.fail.Exception, match=re.escape(pointer)):
        assert_conforms(instance, ref, "test")


CONFORMING = [
    ("null-item", {"item": None}, TICKET_ITEM),
    (
        "local-date-time",
        {"item": {"id": 1, "title": None, "createDate": "2016-03-30T13:10:35.563"}},
        TICKET_ITEM,
    ),
    ("utc-date-time", {"item": {"createDate": "2019-08-18T01:00:00.000Z"}}, TICKET_ITEM),
    ("item-id", {"itemId": 128926}, "#/definitions/OperationResultModel"),
    (
        "swagger-example",
        SWAGGER["definitions"]["QueryModel"]["example"],
        "#/definitions/QueryModel",
    ),
]


@pytest.mark.parametrize(
    ("instance", "ref"), [row[1:] for row in CONFORMING], ids=[row[0] for row in CONFORMING]
)
def test_the_validator_accepts_what_autotask_sends(instance: Any, ref: str) -> None:
    assert problems(canonical_names(instance, _definition(ref)), ref) == []


@pytest.mark.parametrize(
    ("method", "url", "template"),
    [
        ("GET", "/atservicesrest/v1.0/tickets/query", "/V1.0/Tickets/query"),
        ("GET", "/ATServicesRest/V1.0/Tickets/5", "/V1.0/Tickets/{id}"),
        ("POST", "/atservicesrest/v1.0/tickets/5/notes", "/V1.0/Tickets/{parentId}/Notes"),
        ("GET", "/atservicesrest/v1.0/Tickets/query/next", "/V1.0/Tickets/query"),
        ("GET", "/atservicesrest/versioninformation", "/VersionInformation"),
    ],
    ids=["literal-before-template", "id", "child", "next-page", "outside-v1.0"],
)
def test_find_operation(method: str, url: str, template: str) -> None:
    assert find_operation(method, url)[0] == template


# -- the battery -----------------------------------------------------------------------------

TICKET = {"companyID": 29683414, "title": "Disk full on srv01", "status": 1, "priority": 2}
NOTE = {"description": "Alert acknowledged.", "noteType": 1, "publish": 1, "title": "Ack"}

#: A ticket with every kind of writable field set.
FULL_TICKET = TICKET | {
    "description": "/var on srv01 is at 95 %",
    "dueDateTime": "2030-03-21T00:00:00",
    "estimatedHours": 1.5,
    "externalID": "lm-alert-123",
    "issueType": 2,
    "subIssueType": 201,
    "queueID": 29682833,
    "source": 8,
    "ticketCategory": 4,
    "ticketType": 5,
    "serviceLevelAgreementID": 1,
    "monitorTypeID": 2,
    "monitorID": 2**40,
    # References must name seeded, active records of the ticket's company (seed.py).
    "contractID": 29683901,
    "assignedResourceID": 29682886,
    "assignedResourceRoleID": 29682803,
    "purchaseOrderNumber": "PO-1",
    "resolution": "Pending",
    "changeInfoField1": "n/a",
    "isVisibleToComanaged": False,
    "userDefinedFields": [{"name": "Alert Fingerprint", "value": "fp-123"}],
}


#: The OFFICIAL Postman "Create a Ticket" body (autotask-api.md §3): PascalCase "QueueID".
POSTMAN_TICKET = {
    "companyID": 0,
    "QueueID": 5,
    "dueDateTime": "2030-03-21T00:00:00",
    "priority": 2,
    "status": 5,
    "title": "Test ticket from Postman",
}


@dataclass
class Battery:
    """One sandbox with a ticket and a note, and the calls a test made to it."""

    rest: RestClient
    user: ApiUser
    ticket_id: int
    note_id: int
    other_ticket_id: int

    def search(self, **extra: Any) -> dict[str, Any]:
        return {"filter": [{"op": "exist", "field": "id"}]} | extra


Operation = Callable[[Battery], requests.Response]


def _notes(b: Battery) -> str:
    return f"Tickets/{b.ticket_id}/Notes"


def _next_page(b: Battery, method: str) -> requests.Response:
    search = b.search(maxRecords=1)
    first = b.rest.post("Tickets/query", json=search)
    assert first.status_code == 200, first.text
    next_url = first.json()["pageDetails"]["nextPageUrl"]
    assert next_url, first.json()
    if method == "GET":
        return b.rest.session.get(next_url, timeout=10)
    return b.rest.session.post(next_url, json=search, timeout=10)


OPERATIONS: list[tuple[str, Operation]] = [
    (
        "GET zoneInformation",
        lambda b: requests.get(
            f"{b.rest.base}zoneInformation", params={"user": b.user.username}, timeout=10
        ),
    ),
    ("GET ThresholdInformation", lambda b: b.rest.get("ThresholdInformation")),
    (
        "GET VersionInformation",
        lambda b: b.rest.session.get(
            f"{b.rest.base.removesuffix('v1.0/')}VersionInformation", timeout=10
        ),
    ),
    ("GET Version", lambda b: b.rest.get("Version")),
    ("POST Tickets", lambda b: b.rest.post("Tickets", json=FULL_TICKET)),
    ("POST Tickets minimal", lambda b: b.rest.post("Tickets", json=TICKET)),
    ("POST Tickets Postman sample", lambda b: b.rest.post("Tickets", json=POSTMAN_TICKET)),
    ("GET Tickets/{id}", lambda b: b.rest.get(f"Tickets/{b.ticket_id}")),
    ("GET Tickets/{id} missing", lambda b: b.rest.get("Tickets/1")),
    (
        "PATCH Tickets",
        lambda b: b.rest.patch("Tickets", json={"id": b.ticket_id, "status": 5, "title": "Done"}),
    ),
    (
        "PATCH Tickets null",
        lambda b: b.rest.patch("Tickets", json={"id": b.ticket_id, "description": None}),
    ),
    ("PUT Tickets", lambda b: b.rest.put("Tickets", json=TICKET | {"id": b.ticket_id})),
    ("POST Tickets/query", lambda b: b.rest.post("Tickets/query", json=b.search())),
    (
        "POST Tickets/query PascalCase",
        lambda b: b.rest.post(
            "Tickets/query", json=SWAGGER["definitions"]["QueryModel"]["example"]
        ),
    ),
    (
        "GET Tickets/query",
        lambda b: b.rest.get("Tickets/query", params={"search": json.dumps(b.search())}),
    ),
    (
        "POST Tickets/query includeFields",
        lambda b: b.rest.post(
            "Tickets/query", json=b.search(includeFields=["id", "title", "dueDateTime"])
        ),
    ),
    (
        "POST Tickets/query udf",
        lambda b: b.rest.post(
            "Tickets/query",
            json={
                "filter": [
                    {"op": "eq", "field": "Alert Fingerprint", "value": "fp-123", "udf": True}
                ]
            },
        ),
    ),
    ("POST Tickets/query/count", lambda b: b.rest.post("Tickets/query/count", json=b.search())),
    (
        "GET Tickets/query/count",
        lambda b: b.rest.get("Tickets/query/count", params={"search": json.dumps(b.search())}),
    ),
    ("GET Tickets/query/next", lambda b: _next_page(b, "GET")),
    ("POST Tickets/query/next", lambda b: _next_page(b, "POST")),
    ("POST Tickets/{id}/Notes", lambda b: b.rest.post(_notes(b), json=NOTE)),
    ("GET Tickets/{id}/Notes", lambda b: b.rest.get(_notes(b))),
    ("GET Tickets/{id}/Notes/{id}", lambda b: b.rest.get(f"{_notes(b)}/{b.note_id}")),
    (
        "PATCH Tickets/{id}/Notes",
        lambda b: b.rest.patch(_notes(b), json={"id": b.note_id, "title": "Escalated"}),
    ),
    (
        "PUT Tickets/{id}/Notes",
        lambda b: b.rest.put(_notes(b), json=NOTE | {"id": b.note_id, "ticketID": b.ticket_id}),
    ),
    ("POST TicketNotes/query", lambda b: b.rest.post("TicketNotes/query", json=b.search())),
    (
        "GET TicketNotes/query",
        lambda b: b.rest.get("TicketNotes/query", params={"search": json.dumps(b.search())}),
    ),
    ("GET TicketNotes/{id}", lambda b: b.rest.get(f"TicketNotes/{b.note_id}")),
    (
        "POST TicketNotes/query/count",
        lambda b: b.rest.post("TicketNotes/query/count", json=b.search()),
    ),
    ("POST Companies/query", lambda b: b.rest.post("Companies/query", json=b.search())),
    ("GET Companies/{id}", lambda b: b.rest.get("Companies/29683414")),
    ("GET Companies/0", lambda b: b.rest.get("Companies/0")),
    *(
        (
            f"GET {entity}/entityInformation{suffix}",
            (lambda path: lambda b: b.rest.get(path))(f"{entity}/entityInformation{suffix}"),
        )
        for entity in ("Tickets", "TicketNotes", "Companies")
        for suffix in ("", "/fields", "/userDefinedFields")
    ),
]


@pytest.fixture
def battery(rest: RestClient, api_user: ApiUser) -> Battery:
    """A ticket with every kind of field, a note on it, and a second ticket."""
    ticket_id = rest.create_ticket(**FULL_TICKET)
    note = rest.post(f"Tickets/{ticket_id}/Notes", json=NOTE)
    assert note.status_code == 200, note.text
    other = rest.create_ticket()
    return Battery(rest, api_user, ticket_id, note.json()["itemId"], other)


@pytest.mark.parametrize(
    "operation", [op for _, op in OPERATIONS], ids=[name for name, _ in OPERATIONS]
)
def test_operation_conforms_to_swagger(
    battery: Battery, sandbox: Sandbox, operation: Operation
) -> None:
    response = operation(battery)
    assert response.status_code == 200, response.text
    request = response.request
    assert request.method is not None and request.url is not None
    sent = json.loads(request.body) if request.body else None
    check_exchange(request.method, request.url, sent, response.json())
    # Every write the sandbox accepted, set-up included, carried a conforming body.
    for call in sandbox.calls():
        if call.status == 200 and call.request_body is not None:
            _, operation_spec = find_operation(call.method, call.path)
            ref = body_ref(operation_spec)
            assert ref is not None, call.path
            body = canonical_names(call.request_body, _definition(ref))
            assert_conforms(body, ref, f"request body of {call.method} {call.path}")


def test_every_sandbox_route_is_in_the_battery(battery: Battery, sandbox: Sandbox) -> None:
    for _, operation in OPERATIONS:
        assert operation(battery).status_code == 200
    seen = {call.operation for call in sandbox.calls() if call.status == 200}
    assert seen >= {
        "zone.get",
        "threshold.get",
        "api_versions.get",
        "version.get",
        "write.post",
        "write.patch",
        "write.put",
        "item.get",
        "query.get",
        "query.post",
        "count.get",
        "count.post",
        "next.get",
        "next.post",
        "notes.get",
        "notes.post",
        "notes.patch",
        "notes.put",
        "note.get",
        "info.get",
        "fields.get",
        "udfs.get",
    }, seen
