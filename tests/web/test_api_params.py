"""The JSON API's parameters: a path id no database holds is a 404, never a 500.

Flask's own int converter takes any number of digits, and the database then fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.models import Integration
from connector.web.params import MAX_ID
from tests.conftest import API_TOKEN

#: Refusals decided before any query: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TOO_BIG = str(MAX_ID + 1)
HUGE = "99999999999999999999999"
#: Too many digits even for Python's int() (it refuses strings over 4,300 digits).
ENDLESS = "9" * 5000


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == status
    assert len(error["request_id"]) == 32
    return dict(error)


def default_integration_id(app: Flask) -> int:
    with app.extensions["connector"].sessions() as session:
        found = session.scalar(select(Integration.id).where(Integration.name == "default"))
    assert found is not None
    return int(found)


# -- path ids --------------------------------------------------------------------------------------


def id_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, rule) of every route with an `<int:…>` part."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if "<int:" in rule.rule
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
