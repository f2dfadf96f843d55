"""The JSON API's parameters: a path id no database holds is a 404, a bad query parameter a 400.

Never a 500: Flask's own int converter takes any number of digits and the database then fails,
and an unchecked query value (a NUL, a 23-digit id) reached the database the same way.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.domain import Outcome
from connector.web.api.alerts import ALERT_STATUSES, DELIVERY_OUTCOMES, DELIVERY_STATES
from connector.web.params import MAX_ID
from tests.conftest import API_TOKEN, default_integration_id, error_of

#: Refusals decided before any query: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TOO_BIG = str(MAX_ID + 1)
HUGE = "99999999999999999999999"
#: Too many digits even for Python's int() (it refuses strings over 4,300 digits).
ENDLESS = "9" * 5000


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def get_list(client: FlaskClient, app: Flask, endpoint: str, query: Any) -> Any:
    path = endpoint.format(integration=default_integration_id(app))
    return client.get(f"/api/v1/{path}", headers=auth(), query_string=query)


# -- path ids --------------------------------------------------------------------------------------


def id_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, rule) of every token-authenticated route with an `<int:…>` part (the admin
    pages send a signed-out caller to the sign-in first: tests/web/admin checks theirs)."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if "<int:" in rule.rule and not rule.rule.startswith("/admin/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    )


@sqlite_only
@pytest.mark.parametrize(
    "id_", [TOO_BIG, HUGE, ENDLESS, "١٢"], ids=["2^63", "huge", "5000-digits", "arabic-indic"]
)
def test_every_id_route_is_404_for_an_id_no_database_holds(
    client: FlaskClient, connector_app: Flask, id_: str
) -> None:
    routes = id_routes(connector_app)
    # Not vacuous: the routes of the brief are among them.
    assert {
        ("GET", "/api/v1/alerts/<int:alert_id>"),
        ("POST", "/api/v1/deliveries/<int:delivery_id>/replay"),
        ("GET", "/api/v1/rejected-webhooks/<int:rejected_id>"),
        ("GET", "/api/v1/integrations/<int:integration_id>"),
    } <= set(routes)

    for method, rule in routes:
        path = re.sub(r"<int:\w+>", id_, rule)
        response = client.open(path, method=method, headers=auth(), json={})
        error = error_of(response, 404)
        if id_.isascii():
            assert f"ids run from 0 to {MAX_ID}" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        ("GET", "alerts/{id}", None, "no alert {id}"),
        ("POST", "deliveries/{id}/replay", None, "no delivery {id}"),
        ("GET", "rejected-webhooks/{id}", None, "no rejected webhook {id}"),
        ("GET", "integrations/{id}", None, "no integration {id}"),
        ("GET", "integrations/{id}/requests", None, "no integration {id}"),
        ("PUT", "integrations/{id}/requests", {}, "no integration {id}"),
        ("POST", "integrations/{id}/requests/generate", None, "no integration {id}"),
        ("GET", "integrations/{id}/hook-credentials", None, "no integration {id}"),
        ("POST", "integrations/{id}/hook-credentials", {"scheme": "bearer"}, "no integration {id}"),
        ("DELETE", "integrations/{id}/hook-credentials/1", None, "no integration {id}"),
        ("DELETE", "integrations/{integration}/hook-credentials/{id}", None, "credential {id}"),
        ("POST", "integrations/{id}/preview", {}, "no integration {id}"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_largest_id_reaches_the_database_and_is_not_found(
    client: FlaskClient,
    connector_app: Flask,
    method: str,
    path: str,
    body: Any,
    words: str,
) -> None:
    integration = default_integration_id(connector_app)
    url = path.format(id=MAX_ID, integration=integration)

    error = error_of(client.open(f"/api/v1/{url}", method=method, headers=auth(), json=body), 404)

    assert words.format(id=MAX_ID) in error["message"]


# -- query parameters: names -----------------------------------------------------------------------

PAGE = ["limit", "offset"]
#: Every list endpoint and the query parameters it knows, in the order its errors list them.
KNOWN: dict[str, list[str]] = {
    "alerts": [
        "status",
        "source",
        "fingerprint",
        "integration_id",
        "ticket_id",
        "ticket_number",
        "search",
        *PAGE,
    ],
    "deliveries": ["state", "alert_id", "outcome", *PAGE],
    "rejected-webhooks": ["source", "integration_id", "status", "request_id", *PAGE],
    "integrations": [],
    "integrations/{integration}/hook-credentials": [],
}


@sqlite_only
@pytest.mark.parametrize("endpoint", list(KNOWN))
@pytest.mark.parametrize("name", ["colour", "token", "Status", "limit[]"])
def test_an_unknown_parameter_is_400_listing_the_known_ones(
    client: FlaskClient, connector_app: Flask, endpoint: str, name: str
) -> None:
    error = error_of(get_list(client, connector_app, endpoint, {name: "1"}), 400)

    assert f"unknown query parameter {name!r}" in error["message"]
    assert error["details"]["parameters"] == [
        {"parameter": name, "reason": "unknown query parameter", "accepted": KNOWN[endpoint]}
    ]
    known = f"known: {', '.join(KNOWN[endpoint])}" if KNOWN[endpoint] else "takes none"
    assert known in error["message"]


@sqlite_only
@pytest.mark.parametrize("endpoint", list(KNOWN))
def test_no_parameter_at_all_is_fine(
    client: FlaskClient, connector_app: Flask, endpoint: str
) -> None:
    assert get_list(client, connector_app, endpoint, {}).status_code == 200


# -- query parameters: values ----------------------------------------------------------------------

#: Stands for the app's source slugs in `accepted` below.
SOURCES = ["<the app's sources>"]

#: (endpoint, query, the refused parameter, words of the reason, the accepted values or None)
REFUSED_VALUES = [
    # enumerated values outside their set
    ("alerts", {"status": "bogus"}, "status", "must be one of", list(ALERT_STATUSES)),
    ("alerts", {"status": "ACTIVE"}, "status", "got 'ACTIVE'", list(ALERT_STATUSES)),
    ("alerts", {"status": "firing"}, "status", "must be one of", list(ALERT_STATUSES)),
    ("alerts", {"source": "nagios"}, "source", "got 'nagios'", SOURCES),
    ("deliveries", {"state": "failed"}, "state", "must be one of", list(DELIVERY_STATES)),
    ("deliveries", {"outcome": "dead"}, "outcome", "must be one of", list(DELIVERY_OUTCOMES)),
    ("rejected-webhooks", {"source": "nagios"}, "source", "must be one of", SOURCES),
    # empty values
    ("alerts", {"fingerprint": ""}, "fingerprint", "must not be empty", None),
    ("alerts", {"status": ""}, "status", "must not be empty", None),
    ("alerts", {"source": ""}, "source", "must not be empty", None),
    ("alerts", {"ticket_id": ""}, "ticket_id", "must not be empty", None),
    ("alerts", {"ticket_number": ""}, "ticket_number", "must not be empty", None),
    ("alerts", {"limit": ""}, "limit", "must not be empty", None),
    ("deliveries", {"alert_id": ""}, "alert_id", "must not be empty", None),
    ("deliveries", {"outcome": ""}, "outcome", "must not be empty", None),
    ("rejected-webhooks", {"request_id": ""}, "request_id", "must not be empty", None),
    # ids out of range, or no whole number at all
    ("alerts", {"integration_id": HUGE}, "integration_id", f"to {MAX_ID}", None),
    ("alerts", {"ticket_id": TOO_BIG}, "ticket_id", f"to {MAX_ID}", None),
    ("alerts", {"ticket_id": ENDLESS}, "ticket_id", f"to {MAX_ID}", None),
    ("alerts", {"ticket_id": "-1"}, "ticket_id", "whole number", None),
    ("rejected-webhooks", {"integration_id": TOO_BIG}, "integration_id", f"to {MAX_ID}", None),
    ("rejected-webhooks", {"integration_id": ENDLESS}, "integration_id", f"to {MAX_ID}", None),
    ("rejected-webhooks", {"integration_id": "-1"}, "integration_id", "whole number", None),
    ("rejected-webhooks", {"integration_id": "1.5"}, "integration_id", "whole number", None),
    ("rejected-webhooks", {"integration_id": " 7"}, "integration_id", "whole number", None),
    ("rejected-webhooks", {"integration_id": "1_000"}, "integration_id", "whole number", None),
    ("rejected-webhooks", {"integration_id": "١٢"}, "integration_id", "whole number", None),
    ("deliveries", {"alert_id": HUGE}, "alert_id", f"to {MAX_ID}", None),
    ("deliveries", {"offset": HUGE}, "offset", f"to {MAX_ID}", None),
    ("rejected-webhooks", {"integration_id": HUGE}, "integration_id", f"to {MAX_ID}", None),
    ("rejected-webhooks", {"status": "4xx"}, "status", "from 100 to 599", None),
    ("rejected-webhooks", {"status": "600"}, "status", "from 100 to 599", None),
    # text no database could compare (PostgreSQL refuses a NUL in any text)
    ("alerts", {"fingerprint": "disk\x00srv01"}, "fingerprint", "NUL", None),
    ("alerts", {"ticket_number": "T2024\x00"}, "ticket_number", "NUL", None),
    ("rejected-webhooks", {"request_id": "\x00"}, "request_id", "NUL", None),
    # a parameter given twice
    ("alerts", [("status", "active"), ("status", "cleared")], "status", "given 2 times", None),
    ("deliveries", [("limit", "1"), ("limit", "1")], "limit", "given 2 times", None),
]


@sqlite_only
@pytest.mark.parametrize(
    ("endpoint", "query", "parameter", "words", "accepted"),
    REFUSED_VALUES,
    ids=[f"{e}-{p}-{w}" for e, _, p, w, _ in REFUSED_VALUES],
)
def test_a_refused_value_is_400_naming_the_parameter_and_what_it_accepts(
    client: FlaskClient,
    connector_app: Flask,
    endpoint: str,
    query: Any,
    parameter: str,
    words: str,
    accepted: list[str] | None,
) -> None:
    error = error_of(get_list(client, connector_app, endpoint, query), 400)

    assert error["message"].startswith(f"{parameter} ")
    assert words in error["message"]
    [problem] = error["details"]["parameters"]
    assert problem["parameter"] == parameter
    assert words in problem["reason"]
    if accepted is SOURCES:
        accepted = sorted(connector_app.extensions["connector"].sources)
    assert problem.get("accepted") == accepted
    for value in accepted or ():
        assert value in error["message"]


@sqlite_only
def test_every_refused_parameter_is_named_at_once(
    client: FlaskClient, connector_app: Flask
) -> None:
    query = {"status": "bogus", "colour": "red", "fingerprint": "", "limit": "0"}

    error = error_of(get_list(client, connector_app, "alerts", query), 400)

    assert [p["parameter"] for p in error["details"]["parameters"]] == list(query)
    for sentence in ("status must be one of", "'colour'", "fingerprint must", "limit must"):
        assert sentence in error["message"]


@sqlite_only
def test_a_long_refused_value_is_cut_short_in_the_message(
    client: FlaskClient, connector_app: Flask
) -> None:
    error = error_of(get_list(client, connector_app, "alerts", {"status": "x" * 10_000}), 400)

    assert len(error["message"]) < 200


# -- query parameters: accepted values -------------------------------------------------------------


def test_every_planner_outcome_is_a_delivery_outcome_filter() -> None:
    assert {outcome.value for outcome in Outcome} <= set(DELIVERY_OUTCOMES)
    assert "failed" in DELIVERY_OUTCOMES


@pytest.mark.parametrize(
    ("endpoint", "parameter", "values"),
    [
        ("alerts", "status", ALERT_STATUSES),
        ("deliveries", "state", DELIVERY_STATES),
        ("deliveries", "outcome", DELIVERY_OUTCOMES),
    ],
    ids=["alert-status", "delivery-state", "delivery-outcome"],
)
def test_every_enumerated_value_is_accepted(
    client: FlaskClient,
    connector_app: Flask,
    endpoint: str,
    parameter: str,
    values: tuple[str, ...],
) -> None:
    for value in values:
        response = get_list(client, connector_app, endpoint, {parameter: value})
        assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", ["alerts", "rejected-webhooks"])
def test_every_known_source_is_accepted(
    client: FlaskClient, connector_app: Flask, endpoint: str
) -> None:
    for source in connector_app.extensions["connector"].sources:
        response = get_list(client, connector_app, endpoint, {"source": source})
        assert response.status_code == 200, response.get_data(as_text=True)


#: (endpoint, query) pairs that are valid, at their bounds: each answers 200 (here: no rows).
ACCEPTED_VALUES = [
    ("alerts", {"integration_id": "0"}),
    ("alerts", {"ticket_id": str(MAX_ID)}),
    ("alerts", {"ticket_id": "00000000000000000000000042"}),
    ("alerts", {"fingerprint": " spaces kept \t", "ticket_number": "T20240101.0001"}),
    ("deliveries", {"alert_id": str(MAX_ID), "offset": str(MAX_ID)}),
    ("rejected-webhooks", {"integration_id": str(MAX_ID), "status": "100"}),
    ("rejected-webhooks", {"status": "599", "request_id": "ä" * 300}),
]


@pytest.mark.parametrize(
    ("endpoint", "query"),
    ACCEPTED_VALUES,
    ids=[f"{e}-{'-'.join(q)}" for e, q in ACCEPTED_VALUES],
)
def test_values_at_their_bounds_reach_the_database(
    client: FlaskClient, connector_app: Flask, endpoint: str, query: dict[str, str]
) -> None:
    response = get_list(client, connector_app, endpoint, query)

    assert response.status_code == 200, response.get_data(as_text=True)
    [rows] = [value for value in response.get_json().values() if isinstance(value, list)]
    assert rows == []


# -- NUL characters --------------------------------------------------------------------------------

#: (method, path, body) carrying a NUL where the API stores or looks up text; found by
#: schemathesis-style probing on PostgreSQL, whose text holds no NUL (each was a 500 there).
NUL_CALLS = [
    ("post", "integrations/{integration}/hook-credentials", {"scheme": "bearer", "label": "a\x00"}),
    ("delete", "integrations/{integration}/tenants/a%00b", None),
    ("post", "deliveries/1/discard", {"reason": "lost\x00"}),
    ("post", "rejected-webhooks/1/discard", {"reason": "lost\x00"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), NUL_CALLS, ids=[f"{m}-{p}" for m, p, _ in NUL_CALLS]
)
def test_a_nul_in_stored_or_looked_up_text_is_a_400_naming_the_field(
    client: FlaskClient, connector_app: Flask, method: str, path: str, body: Any
) -> None:
    url = "/api/v1/" + path.format(integration=default_integration_id(connector_app))
    response = getattr(client, method)(url, json=body, headers=auth())

    error = error_of(response, 400)
    assert "NUL" in error["message"] or "control characters" in error["message"]
    assert set(error["details"]["fields"]) <= {"label", "tenant", "reason"}
