"""Queries, counts and keyset paging as autotask-api.md §4 describes Autotask's REST API."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from adapters.sandbox import Sandbox
from tests.conftest import RestClient

COMPANY = 29683414

#: A small data set; tickets are referred to by their key.
DATA: dict[str, dict[str, Any]] = {
    "A": {
        "title": "Disk full on srv01",
        "priority": 1,
        "status": 1,
        "queueID": 5,
        "externalID": "alert-1",
        "description": "/var at 95%",
        "dueDateTime": "2030-01-01T00:00:00Z",
        "estimatedHours": 1.5,
        "userDefinedFields": [{"name": "Alert Fingerprint", "value": "fp-1"}],
    },
    "B": {
        "title": "CPU high on srv02",
        "priority": 2,
        "status": 8,
        "queueID": 29682833,
        "externalID": "alert-2",
        "dueDateTime": "2029-06-01T12:00:00Z",
        "userDefinedFields": [{"name": "Alert Fingerprint", "value": "fp-2"}],
    },
    "C": {
        "title": "Link down at branch",
        "priority": 3,
        "status": 5,
        "description": "BGP peer lost",
        "issueType": 12,
        "subIssueType": 1201,
    },
    "D": {
        "title": "srv01 memory",
        "priority": 4,
        "status": 1,
        "queueID": 29682833,
        "externalID": "ALERT-4",
    },
}


@pytest.fixture
def tickets(sandbox: Sandbox) -> dict[str, int]:
    """Insert DATA through the service (fast) and return key → ticket id."""
    return {
        key: sandbox.service.create("Tickets", {"companyID": COMPANY} | fields)
        for key, fields in DATA.items()
    }


def run_query(rest: RestClient, via: str, query: dict[str, Any]) -> requests.Response:
    """POST the QueryModel as the body, or GET it as ?search= JSON."""
    if via == "post":
        return rest.post("Tickets/query", json=query)
    return rest.get("Tickets/query", params={"search": json.dumps(query)})


def found(rest: RestClient, via: str, tickets: dict[str, int], query: dict[str, Any]) -> set[str]:
    response = run_query(rest, via, query)
    assert response.status_code == 200, response.text
    by_id = {ticket_id: key for key, ticket_id in tickets.items()}
    items = response.json()["items"]
    assert response.json()["pageDetails"]["count"] == len(items)
    return {by_id[item["id"]] for item in items}


def errors_of(response: requests.Response) -> list[str]:
    assert response.status_code == 500, response.text
    body = response.json()
    assert list(body) == ["errors"] and body["errors"], body
    return list(body["errors"])


VIA = pytest.mark.parametrize("via", ["post", "get"])

OPERATORS = [
    ("eq-int", {"op": "eq", "field": "priority", "value": 2}, {"B"}),
    (
        "eq-string-ignores-case",
        {"op": "eq", "field": "title", "value": "disk FULL on srv01"},
        {"A"},
    ),
    ("eq-number-as-string", {"op": "eq", "field": "priority", "value": "3"}, {"C"}),
    ("eq-double", {"op": "eq", "field": "estimatedHours", "value": 1.5}, {"A"}),
    ("noteq", {"op": "noteq", "field": "status", "value": 1}, {"B", "C"}),
    ("noteq-skips-empty", {"op": "noteq", "field": "queueID", "value": 5}, {"B", "D"}),
    ("gt", {"op": "gt", "field": "priority", "value": 2}, {"C", "D"}),
    ("gte", {"op": "gte", "field": "priority", "value": 2}, {"B", "C", "D"}),
    ("lt", {"op": "lt", "field": "priority", "value": 2}, {"A"}),
    ("lte", {"op": "lte", "field": "priority", "value": 2}, {"A", "B"}),
    ("gt-datetime", {"op": "gt", "field": "dueDateTime", "value": "2029-12-31T00:00:00"}, {"A"}),
    ("lt-datetime", {"op": "lt", "field": "dueDateTime", "value": "2029-12-31T00:00:00Z"}, {"B"}),
    ("beginsWith", {"op": "beginsWith", "field": "title", "value": "SRV01"}, {"D"}),
    ("endsWith", {"op": "endsWith", "field": "title", "value": "srv01"}, {"A"}),
    ("contains", {"op": "contains", "field": "title", "value": "srv0"}, {"A", "B", "D"}),
    ("exist", {"op": "exist", "field": "externalID"}, {"A", "B", "D"}),
    ("exist-description", {"op": "exist", "field": "description"}, {"A", "C"}),
    ("notExist", {"op": "notExist", "field": "externalID"}, {"C"}),
    ("in", {"op": "in", "field": "priority", "value": [1, 3]}, {"A", "C"}),
    (
        "in-strings",
        {"op": "in", "field": "externalID", "value": ["alert-1", "alert-4"]},
        {"A", "D"},
    ),
    ("notIn", {"op": "notIn", "field": "priority", "value": [1, 3]}, {"B", "D"}),
    (
        "in-datetimes",
        {"op": "in", "field": "dueDateTime", "value": ["2030-01-01T00:00:00", "2001-01-01"]},
        {"A"},
    ),
    ("externalID", {"op": "eq", "field": "externalID", "value": "alert-2"}, {"B"}),
    ("field-name-ignores-case", {"op": "eq", "field": "PRIORITY", "value": 4}, {"D"}),
    ("id", {"op": "gt", "field": "Id", "value": 0}, {"A", "B", "C", "D"}),
    (
        "udf",
        {"op": "eq", "field": "Alert Fingerprint", "value": "FP-2", "udf": True},
        {"B"},
    ),
    ("udf-exist", {"op": "exist", "field": "alert fingerprint", "udf": True}, {"A", "B"}),
]


@VIA
@pytest.mark.parametrize(
    ("condition", "expected"), [row[1:] for row in OPERATORS], ids=[row[0] for row in OPERATORS]
)
def test_operator(
    rest: RestClient,
    tickets: dict[str, int],
    via: str,
    condition: dict[str, Any],
    expected: set[str],
) -> None:
    assert found(rest, via, tickets, {"filter": [condition]}) == expected


GROUPS = [
    (
        "or",
        [
            {
                "op": "or",
                "items": [
                    {"op": "eq", "field": "priority", "value": 1},
                    {"op": "eq", "field": "priority", "value": 4},
                ],
            }
        ],
        {"A", "D"},
    ),
    (
        "and-with-nested-or",
        [
            {
                "op": "and",
                "items": [
                    {"op": "eq", "field": "status", "value": 1},
                    {
                        "op": "or",
                        "items": [
                            {"op": "eq", "field": "queueID", "value": 5},
                            {"op": "eq", "field": "externalID", "value": "alert-4"},
                        ],
                    },
                ],
            }
        ],
        {"A", "D"},
    ),
    (
        "or-of-and",
        [
            {
                "op": "or",
                "items": [
                    {
                        "op": "and",
                        "items": [
                            {"op": "gte", "field": "priority", "value": 3},
                            {"op": "eq", "field": "status", "value": 5},
                        ],
                    },
                    {"op": "contains", "field": "title", "value": "cpu"},
                ],
            }
        ],
        {"B", "C"},
    ),
    (
        "top-level-filters-are-and-ed",
        [
            {"op": "eq", "field": "status", "value": 1},
            {"op": "contains", "field": "title", "value": "srv01"},
            {"op": "noteq", "field": "priority", "value": 1},
        ],
        {"D"},
    ),
]


@VIA
@pytest.mark.parametrize(
    ("filters", "expected"), [row[1:] for row in GROUPS], ids=[row[0] for row in GROUPS]
)
def test_groups(
    rest: RestClient,
    tickets: dict[str, int],
    via: str,
    filters: list[dict[str, Any]],
    expected: set[str],
) -> None:
    assert found(rest, via, tickets, {"filter": filters}) == expected


@VIA
def test_pascal_case_query_model_keys(rest: RestClient, tickets: dict[str, int], via: str) -> None:
    # The Swagger QueryModel example is PascalCase (autotask-api.md §4).
    query = {
        "MaxRecords": 2,
        "IncludeFields": ["Id", "TITLE"],
        "Filter": [{"Op": "gt", "Field": "id", "Value": 0, "Udf": False, "Items": []}],
    }
    response = run_query(rest, via, query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["items"]] == [tickets["A"], tickets["B"]]
    # The real answer keeps userDefinedFields beside the fields asked for (apigrate README).
    assert all(set(item) == {"id", "title", "userDefinedFields"} for item in body["items"])
    assert body["pageDetails"]["requestCount"] == 2
    assert body["pageDetails"]["nextPageUrl"] is not None


@VIA
def test_include_fields(rest: RestClient, tickets: dict[str, int], via: str) -> None:
    query = {
        "includeFields": ["externalID"],
        "filter": [{"op": "eq", "field": "id", "value": tickets["B"]}],
    }
    response = run_query(rest, via, query)
    assert response.status_code == 200, response.text
    # The real includeFields answer keeps userDefinedFields (apigrate/autotask-restapi README).
    [item] = response.json()["items"]
    assert item == {"externalID": "alert-2", "userDefinedFields": item["userDefinedFields"]}
    assert isinstance(item["userDefinedFields"], list)


BAD_QUERIES = [
    ("unknown-field", {"filter": [{"op": "eq", "field": "nosuchfield", "value": 1}]}),
    ("not-queryable", {"filter": [{"op": "eq", "field": "creatorType", "value": 1}]}),
    ("unknown-operator", {"filter": [{"op": "like", "field": "title", "value": "x"}]}),
    ("null-value", {"filter": [{"op": "eq", "field": "title", "value": None}]}),
    ("no-filter", {"maxRecords": 10}),
    ("empty-filter", {"filter": []}),
    ("in-needs-a-list", {"filter": [{"op": "in", "field": "priority", "value": 1}]}),
    ("empty-or", {"filter": [{"op": "or", "items": []}]}),
    ("bad-int", {"filter": [{"op": "eq", "field": "priority", "value": "high"}]}),
    ("bad-datetime", {"filter": [{"op": "gt", "field": "dueDateTime", "value": "soon"}]}),
    (
        "unknown-include-field",
        {"includeFields": ["nope"], "filter": [{"op": "exist", "field": "id"}]},
    ),
    (
        "two-udfs",
        {
            "filter": [
                {"op": "eq", "field": "Alert Fingerprint", "value": "x", "udf": True},
                {"op": "eq", "field": "Other", "value": "y", "udf": True},
            ]
        },
    ),
    ("max-records-0", {"maxRecords": 0, "filter": [{"op": "exist", "field": "id"}]}),
    ("max-records-501", {"maxRecords": 501, "filter": [{"op": "exist", "field": "id"}]}),
    ("max-records-text", {"maxRecords": "ten", "filter": [{"op": "exist", "field": "id"}]}),
]


@VIA
@pytest.mark.parametrize("query", [row[1] for row in BAD_QUERIES], ids=[r[0] for r in BAD_QUERIES])
def test_bad_query_is_a_500(
    rest: RestClient, tickets: dict[str, int], via: str, query: dict[str, Any]
) -> None:
    errors_of(run_query(rest, via, query))


def test_unknown_and_non_queryable_fields_are_named(rest: RestClient) -> None:
    for field in ("nosuchfield", "creatorType", "lastActivityPersonType"):
        query = {"filter": [{"op": "eq", "field": field, "value": 1}]}
        errors = errors_of(rest.post("Tickets/query", json=query))
        assert any(field.lower() in message.lower() for message in errors), errors


def test_get_query_needs_a_search_parameter(rest: RestClient) -> None:
    errors_of(rest.get("Tickets/query"))
    errors_of(rest.get("Tickets/query", params={"search": "{not json"}))


def _or_conditions(n: int) -> dict[str, Any]:
    items = [{"op": "eq", "field": "id", "value": i} for i in range(n)]
    return {"filter": [{"op": "or", "items": items}]}


def test_or_conditions_are_limited_to_500(rest: RestClient, tickets: dict[str, int]) -> None:
    assert rest.post("Tickets/query", json=_or_conditions(500)).status_code == 200
    errors = errors_of(rest.post("Tickets/query", json=_or_conditions(501)))
    assert any("500" in message and "OR" in message for message in errors), errors


@pytest.mark.parametrize("max_records", [1, 3, 500])
def test_max_records_bounds_the_page(
    rest: RestClient, tickets: dict[str, int], max_records: int
) -> None:
    query = {"maxRecords": max_records, "filter": [{"op": "exist", "field": "id"}]}
    body = rest.post("Tickets/query", json=query).json()
    assert len(body["items"]) == min(max_records, 4)
    assert body["pageDetails"]["requestCount"] == max_records
    assert (body["pageDetails"]["nextPageUrl"] is not None) == (max_records < 4)


def test_query_without_matches(rest: RestClient, tickets: dict[str, int]) -> None:
    query = {"filter": [{"op": "eq", "field": "externalID", "value": "no-such-alert"}]}
    body = rest.post("Tickets/query", json=query).json()
    assert body == {
        "items": [],
        "pageDetails": {"count": 0, "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None},
    }


@VIA
def test_count(rest: RestClient, tickets: dict[str, int], via: str) -> None:
    query = {"filter": [{"op": "eq", "field": "status", "value": 1}]}
    if via == "post":
        response = rest.post("Tickets/query/count", json=query)
    else:
        response = rest.get("Tickets/query/count", params={"search": json.dumps(query)})
    assert response.status_code == 200, response.text
    assert response.json() == {"queryCount": 2}


# -- paging ----------------------------------------------------------------------------------

MATCHING = 1203


@pytest.fixture
def many(sandbox: Sandbox) -> list[int]:
    """1,203 New tickets with every ninth one In Progress in between; returns the New ids."""
    ids = []
    for n in range(MATCHING + MATCHING // 8):
        status = 8 if n % 9 == 8 else 1
        values = {"companyID": COMPANY, "title": f"Alert {n}", "status": status, "priority": 2}
        ticket_id = sandbox.service.create("Tickets", values)
        if status == 1:
            ids.append(ticket_id)
    assert len(ids) >= MATCHING
    return ids[:MATCHING]


def _page_query(last_id: int) -> dict[str, Any]:
    return {
        "filter": [
            {"op": "eq", "field": "status", "value": 1},
            {"op": "lte", "field": "id", "value": last_id},
        ]
    }


def _follow(rest: RestClient, first: requests.Response, method: str) -> list[dict[str, Any]]:
    """Every page of a query, by its nextPageUrl; a 100th page means the links go round."""
    pages = []
    response = first
    for _ in range(100):
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        next_url = body["pageDetails"]["nextPageUrl"]
        if next_url is None:
            return pages
        assert "/query/next?" in next_url
        assert "paging=" in next_url
        if method == "GET":
            response = rest.session.get(next_url, timeout=10)
        else:
            query = json.loads(first.request.body or "{}")
            response = rest.session.post(next_url, json=query, timeout=10)
    raise AssertionError(f"still a nextPageUrl after {len(pages)} pages: {next_url}")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_follows_next_page_urls_verbatim(
    rest: RestClient, many: list[int], method: str
) -> None:
    query = _page_query(many[-1])
    pages = _follow(rest, rest.post("Tickets/query", json=query), method)
    assert [len(page["items"]) for page in pages] == [500, 500, 203]
    assert [page["pageDetails"]["count"] for page in pages] == [500, 500, 203]
    ids = [item["id"] for page in pages for item in page["items"]]
    assert ids == many  # every match once, in id order: no duplicates, no gaps
    assert pages[0]["pageDetails"]["prevPageUrl"] is None
    # prevPageUrl leads back to the page before.
    for before, page in zip(pages, pages[1:], strict=False):
        prev_url = page["pageDetails"]["prevPageUrl"]
        assert prev_url is not None
        back = rest.session.get(prev_url, timeout=10)
        assert back.status_code == 200, back.text
        assert [i["id"] for i in back.json()["items"]] == [i["id"] for i in before["items"]]


def test_paging_from_a_get_query(rest: RestClient, many: list[int]) -> None:
    search = json.dumps(_page_query(many[-1]))
    first = rest.get("Tickets/query", params={"search": search})
    pages = _follow(rest, first, "GET")
    assert [item["id"] for page in pages for item in page["items"]] == many


def test_next_page_url_points_at_the_sandbox(
    rest: RestClient, many: list[int], sandbox_server: Any
) -> None:
    body = rest.post("Tickets/query", json=_page_query(many[-1])).json()
    assert body["pageDetails"]["nextPageUrl"].startswith(
        f"{sandbox_server.url}ATServicesRest/V1.0/Tickets/query/next?paging="
    )


def test_next_with_a_bad_paging_parameter_is_a_500(rest: RestClient) -> None:
    search = json.dumps(_page_query(10))
    errors_of(rest.get("Tickets/query/next", params={"paging": "{}", "search": search}))
    errors_of(rest.get("Tickets/query/next", params={"paging": "nope", "search": search}))


def test_include_fields_on_large_results_must_include_id(rest: RestClient, many: list[int]) -> None:
    query = _page_query(many[-1])
    errors_of(rest.post("Tickets/query", json=query | {"includeFields": ["title"]}))
    with_id = rest.post("Tickets/query", json=query | {"includeFields": ["title", "id"]})
    assert with_id.status_code == 200, with_id.text
    pages = _follow(rest, with_id, "GET")
    assert [item["id"] for page in pages for item in page["items"]] == many
    assert all(
        set(item) == {"title", "id", "userDefinedFields"}
        for page in pages
        for item in page["items"]
    )


@VIA
def test_count_of_a_large_result(rest: RestClient, many: list[int], via: str) -> None:
    query = _page_query(many[-1])
    if via == "post":
        response = rest.post("Tickets/query/count", json=query)
    else:
        response = rest.get("Tickets/query/count", params={"search": json.dumps(query)})
    assert response.json() == {"queryCount": MATCHING}
