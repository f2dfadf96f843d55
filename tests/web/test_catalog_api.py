"""The setup API: POST /integrations/<id>/check-connection, GET …/picklists and …/companies.

Against the real sandbox over HTTP: the report is a 200 whether its checks pass or fail (the
failures are data, in words), the lists are Autotask's own and cached until the integration is
saved, every call is governed and stored as API activity, and no answer carries a secret.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, SandboxServer
from connector.integrations.catalog import Cached, CatalogCache
from connector.persistence.models import ApiCall, GovernorState, Integration, utcnow
from tests import canaries
from tests.conftest import API_TOKEN, default_integration_id, error_of
from tests.web.test_test_delivery import change_integration

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
BOTH_APIS = pytest.mark.parametrize("api_flavour", ["rest", "soap"])
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def check(client: FlaskClient, integration_id: int, **kwargs: Any) -> Any:
    return client.post(
        f"/api/v1/integrations/{integration_id}/check-connection", headers=AUTH, **kwargs
    )


def ok_json(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in body["checks"]}


def api_calls(app: Flask) -> list[ApiCall]:
    with app.extensions["connector"].transaction() as session:
        return list(session.scalars(select(ApiCall).order_by(ApiCall.id)))


def no_secrets(body: dict[str, Any], user: ApiUser, *also: str) -> None:
    text = json.dumps(body)
    for secret in (user.secret, user.integration_code, *also):
        assert secret not in text


def deny(server: SandboxServer, plan: dict[str, list[str]]) -> None:
    response = requests.post(f"{server.url}_sandbox/permissions", json=plan, timeout=10)
    assert response.status_code == 200, response.text


# -- check connection ----------------------------------------------------------------------------


@BOTH_APIS
def test_check_connection_passes_and_is_recorded(
    connector_app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    integration_id = default_integration_id(connector_app)
    body = ok_json(check(client, integration_id))
    assert body["ok"] is True
    assert body["integration_id"] == integration_id
    assert [item["name"] for item in body["checks"]] == [
        "zone_lookup",
        "credentials",
        "read_tickets",
        "create_tickets",
        "update_tickets",
        "read_companies",
        "create_notes",
    ]
    assert all(item["ok"] and not item["skipped"] for item in body["checks"])
    assert body["checks"][0]["label"] == "Zone lookup"
    assert body["zone_url"].startswith("http://127.0.0.1:")
    no_secrets(body, api_user)
    # Every call is API activity, as the worker's are (the governor counts them).
    assert len(api_calls(connector_app)) >= 5


@BOTH_APIS
def test_a_wrong_secret_is_a_200_with_the_failure_in_words(
    connector_app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    change_integration(connector_app, secret=canaries.WRONG_AUTOTASK_SECRET)
    body = ok_json(check(client, default_integration_id(connector_app)))
    assert body["ok"] is False
    found = checks(body)
    assert found["zone_lookup"]["ok"] is True
    assert found["credentials"]["ok"] is False
    assert "refused its secret (HTTP 401)" in found["credentials"]["message"]
    assert found["read_tickets"]["skipped"] is True
    no_secrets(body, api_user, canaries.WRONG_AUTOTASK_SECRET)


@BOTH_APIS
def test_an_unknown_user_and_a_wrong_tracking_identifier_in_words(
    connector_app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    integration_id = default_integration_id(connector_app)
    change_integration(connector_app, username="nobody@sandbox.test")
    body = ok_json(check(client, integration_id))
    assert (
        "does not know the API user 'nobody@sandbox.test'" in checks(body)["zone_lookup"]["message"]
    )
    change_integration(
        connector_app, username=api_user.username, integration_code="WRONGTRACKINGID00000000000"
    )
    body = ok_json(check(client, integration_id))
    message = checks(body)["credentials"]["message"]
    assert "tracking identifier" in message
    no_secrets(body, api_user, "WRONGTRACKINGID00000000000")


@BOTH_APIS
def test_a_missing_permission_is_said(
    connector_app: Flask, client: FlaskClient, sandbox_server: SandboxServer
) -> None:
    deny(sandbox_server, {"Tickets": ["create"], "Companies": ["query"]})
    body = ok_json(check(client, default_integration_id(connector_app)))
    failed = {name for name, item in checks(body).items() if not item["ok"]}
    assert failed == {"create_tickets", "read_companies"}
    assert "does not allow it to create tickets" in checks(body)["create_tickets"]["message"]
    assert "does not allow it to read companies" in checks(body)["read_companies"]["message"]


def test_check_connection_of_an_unknown_integration_is_a_404(client: FlaskClient) -> None:
    error = error_of(check(client, 999999), 404)
    assert "no integration 999999" in error["message"]


def test_check_connection_takes_no_body_and_no_query(
    connector_app: Flask, client: FlaskClient
) -> None:
    integration_id = default_integration_id(connector_app)
    assert check(client, integration_id, json={}).status_code == 200
    assert "no body" in error_of(check(client, integration_id, json={"x": 1}), 400)["message"]
    refused = client.post(
        f"/api/v1/integrations/{integration_id}/check-connection?verbose=1", headers=AUTH
    )
    assert "unknown query parameter 'verbose'" in error_of(refused, 400)["message"]


def test_the_setup_api_needs_the_api_token(connector_app: Flask, client: FlaskClient) -> None:
    integration_id = default_integration_id(connector_app)
    for response in (
        client.post(f"/api/v1/integrations/{integration_id}/check-connection"),
        client.get(f"/api/v1/integrations/{integration_id}/picklists"),
        client.get(f"/api/v1/integrations/{integration_id}/companies"),
    ):
        assert response.status_code == 401


@sqlite_only
def test_a_throttled_check_is_a_503_with_retry_after(
    connector_app: Flask, client: FlaskClient
) -> None:
    integration_id = default_integration_id(connector_app)
    with connector_app.extensions["connector"].transaction() as session:
        session.add(
            GovernorState(
                integration_id=integration_id,
                breaker="open",
                failures=5,
                open_until=utcnow() + timedelta(seconds=90),
            )
        )
    response = check(client, integration_id)
    error = error_of(response, 503)
    assert "circuit breaker open" in error["message"]
    assert 85 <= int(response.headers["Retry-After"]) <= 90
    assert api_calls(connector_app) == []


# -- picklists -----------------------------------------------------------------------------------


@BOTH_APIS
def test_picklists_are_autotasks_lists_with_the_settings_they_fill(
    connector_app: Flask, client: FlaskClient, api_user: ApiUser
) -> None:
    integration_id = default_integration_id(connector_app)
    body = ok_json(client.get(f"/api/v1/integrations/{integration_id}/picklists", headers=AUTH))
    lists = body["picklists"]
    assert set(body["settings"].values()) <= set(lists)
    assert body["settings"]["queue_id"] == "queues"
    assert body["settings"]["work_type"] == "work_types"
    assert {"id": 1, "label": "New", "active": True, "parent_id": None, "default": True} in lists[
        "statuses"
    ]
    assert {(q["id"], q["label"]) for q in lists["queues"]} >= {(29682833, "Monitoring Alert")}
    assert {(s["id"], s["parent_id"]) for s in lists["sub_issue_types"]} >= {(201, 2), (401, 4)}
    assert {w["id"]: w["active"] for w in lists["work_types"]} == {
        29682801: True,
        29682802: True,
        29682805: True,
        29682809: False,
    }
    assert [n["label"] for n in lists["note_publish"]] == [
        "All Autotask Users",
        "Internal Project Team",
    ]
    assert body["from_cache"] is False
    no_secrets(body, api_user)


def test_picklists_are_cached_until_the_integration_is_saved(
    connector_app: Flask, client: FlaskClient
) -> None:
    integration_id = default_integration_id(connector_app)
    url = f"/api/v1/integrations/{integration_id}/picklists"
    first = ok_json(client.get(url, headers=AUTH))
    calls = len(api_calls(connector_app))
    second = ok_json(client.get(url, headers=AUTH))
    assert second["from_cache"] is True
    assert second["read_at"] == first["read_at"]
    assert second["picklists"] == first["picklists"]
    assert len(api_calls(connector_app)) == calls  # not asked again
    fresh = ok_json(client.get(url + "?refresh=true", headers=AUTH))
    assert fresh["from_cache"] is False
    assert len(api_calls(connector_app)) > calls
    calls = len(api_calls(connector_app))
    # Saving the integration (a changed setting, new credentials …) forgets what was read.
    with connector_app.extensions["connector"].transaction() as session:
        integration = session.get(Integration, integration_id)
        assert integration is not None
        integration.settings = {**integration.settings, "due_days": 2.0}
    after = ok_json(client.get(url, headers=AUTH))
    assert after["from_cache"] is False
    assert len(api_calls(connector_app)) > calls


def test_picklists_refused_by_autotask_are_a_502_in_words(
    connector_app: Flask, client: FlaskClient, sandbox_server: SandboxServer
) -> None:
    deny(sandbox_server, {"BillingCodes": ["query"]})
    response = client.get(
        f"/api/v1/integrations/{default_integration_id(connector_app)}/picklists", headers=AUTH
    )
    error = error_of(response, 502)
    assert "security level does not allow it" in error["message"]


def test_picklists_query_parameters_are_checked(connector_app: Flask, client: FlaskClient) -> None:
    url = f"/api/v1/integrations/{default_integration_id(connector_app)}/picklists"
    assert (
        "refresh must be one of true, false"
        in error_of(client.get(url + "?refresh=yes", headers=AUTH), 400)["message"]
    )
    error_of(client.get("/api/v1/integrations/999999/picklists", headers=AUTH), 404)


# -- companies -----------------------------------------------------------------------------------


@BOTH_APIS
def test_companies_are_searched_by_name(connector_app: Flask, client: FlaskClient) -> None:
    url = f"/api/v1/integrations/{default_integration_id(connector_app)}/companies"
    body = ok_json(client.get(url + "?search=contoso", headers=AUTH))
    assert body["companies"] == [{"id": 29683414, "name": "Contoso Ltd", "active": True}]
    assert body["search"] == "contoso" and body["limit"] == 25
    inactive = ok_json(client.get(url + "?search=Adventure", headers=AUTH))["companies"]
    assert inactive == [{"id": 29683417, "name": "Adventure Works (inactive)", "active": False}]
    first_two = ok_json(client.get(url + "?limit=2", headers=AUTH))["companies"]
    assert [c["name"] for c in first_two] == ["Contoso Ltd", "Sandbox MSP"]


def test_a_company_search_is_cached_per_search(connector_app: Flask, client: FlaskClient) -> None:
    url = f"/api/v1/integrations/{default_integration_id(connector_app)}/companies"
    assert ok_json(client.get(url + "?search=fab", headers=AUTH))["from_cache"] is False
    assert ok_json(client.get(url + "?search=FAB", headers=AUTH))["from_cache"] is True
    assert ok_json(client.get(url + "?search=north", headers=AUTH))["from_cache"] is False


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=0", "limit must be a whole number from 1 to 100"),
        ("limit=101", "limit must be a whole number from 1 to 100"),
        ("search=" + "x" * 101, "search must be at most 100 characters"),
        ("search=a&search=b", "search given 2 times"),
        ("name=x", "unknown query parameter 'name'"),
    ],
)
def test_company_search_parameters_are_checked(
    connector_app: Flask, client: FlaskClient, query: str, words: str
) -> None:
    url = f"/api/v1/integrations/{default_integration_id(connector_app)}/companies?{query}"
    assert words in error_of(client.get(url, headers=AUTH), 400)["message"]


# -- the cache itself ----------------------------------------------------------------------------


def test_the_cache_expires_and_keeps_only_the_latest_save() -> None:
    now = [0.0]
    cache = CatalogCache(60, clock=lambda: now[0])
    answer: Cached[Any] = Cached("lists", utcnow())
    cache.put((1, "saved-1", "picklists"), answer)
    cache.put((2, "saved-1", "picklists"), answer)
    assert cache.get((1, "saved-1", "picklists")) is answer
    cache.put((1, "saved-2", "picklists"), answer)  # integration 1 was saved again
    assert cache.get((1, "saved-1", "picklists")) is None
    assert cache.get((2, "saved-1", "picklists")) is answer
    now[0] = 60.0
    assert cache.get((1, "saved-2", "picklists")) is None


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache = CatalogCache(0)
    cache.put((1, "s", "x"), Cached("lists", utcnow()))
    assert cache.get((1, "s", "x")) is None
