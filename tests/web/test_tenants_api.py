"""The tenant → company map through the JSON API: list, search and page, set, delete, unmapped.

A tenant is the sender's text and goes in the path percent-encoded: slashes, spaces, quotes,
percent signs and emoji included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.persistence.models import Integration, TenantMapping
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id, error_of

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: The conftest integration's map.
CONFIGURED = [
    {"tenant": "fabrikam", "company_id": 29683415, "enabled": True},
    {"tenant": "northwind", "company_id": 29683416, "enabled": True},
    {"tenant": "switched-off", "company_id": None, "enabled": False},
]

ODD_TENANTS = [
    pytest.param("acme/eu-west", id="slash"),
    pytest.param("/leading", id="leading-slash"),
    pytest.param("trailing/", id="trailing-slash"),
    pytest.param("a//b", id="double-slash"),
    pytest.param("Contoso Ltd.", id="space"),
    pytest.param("Bäckerei 🥐 Müller", id="emoji"),
    pytest.param('O\'Brien "Ltd"', id="quotes"),
    pytest.param("100% up?#frag", id="percent-question-hash"),
    pytest.param("unmapped", id="named-like-the-route"),
    pytest.param("..", id="dot-dot"),
    pytest.param("t" * 255, id="longest"),
]


def api(client: FlaskClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", {"Authorization": f"Bearer {API_TOKEN}"})
    if body is not None:
        kwargs["json"] = body
    return client.open(f"/api/v1/{path}", method=method, **kwargs)


def tenants_path(app: Flask, tenant: str | None = None) -> str:
    base = f"integrations/{default_integration_id(app)}/tenants"
    return base if tenant is None else f"{base}/{quote(tenant, safe='')}"


def answer(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return dict(response.get_json())


def stored_map(app: Flask) -> dict[str, tuple[int | None, bool]]:
    with app.extensions["connector"].sessions() as session:
        rows = session.scalars(select(TenantMapping))
        return {row.tenant: (row.company_id, row.enabled) for row in rows}


def updated_at(app: Flask) -> Any:
    with app.extensions["connector"].sessions() as session:
        return session.scalar(
            select(Integration.updated_at).where(Integration.id == default_integration_id(app))
        )


def hook(client: FlaskClient, fingerprint: str, tenant: str) -> None:
    body = {"id": fingerprint, "status": "active", "severity": "error", "title": "t"}
    response = client.post(
        "/hooks/generic",
        json=body | {"tenant": tenant},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def test_the_map_is_listed_by_tenant(client: FlaskClient, connector_app: Flask) -> None:
    listed = answer(api(client, "GET", tenants_path(connector_app)))

    assert listed == {"tenants": CONFIGURED, "total": 3, "limit": 100, "offset": 0}


@sqlite_only
@pytest.mark.parametrize(
    ("query", "tenants", "total"),
    [
        pytest.param("search=north", ["northwind"], 1, id="substring"),
        pytest.param("search=NORTH", ["northwind"], 1, id="any-case"),
        pytest.param("search=i", ["fabrikam", "northwind", "switched-off"], 3, id="several"),
        pytest.param("search=%25", [], 0, id="percent-is-literal"),
        pytest.param("search=_", [], 0, id="underscore-is-literal"),
        pytest.param("limit=2", ["fabrikam", "northwind"], 3, id="first-page"),
        pytest.param("limit=2&offset=2", ["switched-off"], 3, id="second-page"),
        pytest.param("search=i&limit=1&offset=1", ["northwind"], 3, id="search-and-page"),
    ],
)
def test_the_map_is_searched_and_paged(
    client: FlaskClient, connector_app: Flask, query: str, tenants: list[str], total: int
) -> None:
    listed = answer(api(client, "GET", f"{tenants_path(connector_app)}?{query}"))

    assert [entry["tenant"] for entry in listed["tenants"]] == tenants
    assert listed["total"] == total


@sqlite_only
@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        pytest.param("limit=0", "limit", id="limit-zero"),
        pytest.param("offset=-1", "offset", id="offset-negative"),
        pytest.param("search=", "search", id="search-empty"),
        pytest.param("tenant=x", "tenant", id="unknown-parameter"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(
    client: FlaskClient, connector_app: Flask, query: str, parameter: str
) -> None:
    for path in (tenants_path(connector_app), tenants_path(connector_app) + "/unmapped"):
        error = error_of(api(client, "GET", f"{path}?{query}"), 400)
        assert error["details"]["parameters"][0]["parameter"] == parameter


@sqlite_only
@pytest.mark.parametrize("tenant", ODD_TENANTS)
def test_any_tenant_can_be_mapped_changed_and_removed_through_its_path(
    client: FlaskClient, connector_app: Flask, tenant: str
) -> None:
    path = tenants_path(connector_app, tenant)

    created = api(client, "PUT", path, {"company_id": 29683415})
    assert answer(created, 201) == {"tenant": tenant, "company_id": 29683415, "enabled": True}
    assert stored_map(connector_app)[tenant] == (29683415, True)

    changed = api(client, "PUT", path, {"company_id": 29683416, "enabled": False})
    assert answer(changed, 200) == {"tenant": tenant, "company_id": 29683416, "enabled": False}
    assert stored_map(connector_app)[tenant] == (29683416, False)
    search = quote(tenant[:20], safe="")
    found = answer(api(client, "GET", f"{tenants_path(connector_app)}?search={search}"))
    assert {"tenant": tenant, "company_id": 29683416, "enabled": False} in found["tenants"]

    removed = api(client, "DELETE", path)
    assert removed.status_code == 204
    assert tenant not in stored_map(connector_app)
    assert set(stored_map(connector_app)) == {entry["tenant"] for entry in CONFIGURED}


@sqlite_only
def test_each_change_moves_updated_at_and_a_repeat_does_not(
    client: FlaskClient, connector_app: Flask
) -> None:
    path = tenants_path(connector_app, "contoso")
    first = updated_at(connector_app)
    answer(api(client, "PUT", path, {"company_id": 29683415}), 201)
    second = updated_at(connector_app)
    answer(api(client, "PUT", path, {"company_id": 29683415}), 200)
    third = updated_at(connector_app)
    assert api(client, "DELETE", path).status_code == 204

    assert first < second == third < updated_at(connector_app)


#: (body, words the 400 names)
INVALID_MAPPINGS = [
    pytest.param({}, "company_id: required while the tenant is enabled", id="no-company"),
    pytest.param({"company_id": None}, "company_id: required", id="null-company-enabled"),
    pytest.param({"company_id": "29683415"}, "company_id: Not a valid integer", id="text-id"),
    pytest.param({"company_id": 1.5}, "company_id: Not a valid integer", id="fraction"),
    pytest.param({"company_id": True}, "company_id: Not a valid integer", id="bool-id"),
    pytest.param({"company_id": -1}, "company_id", id="negative"),
    pytest.param({"company_id": 2**31}, "company_id", id="past-32-bits"),
    pytest.param({"company_id": 1, "enabled": "yes"}, "enabled: Not a valid boolean", id="yes"),
    pytest.param({"company_id": 1, "tenant": "x"}, "tenant: Unknown field", id="unknown-field"),
]


@sqlite_only
@pytest.mark.parametrize(("body", "words"), INVALID_MAPPINGS)
def test_a_refused_mapping_is_a_400_naming_the_field(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], words: str
) -> None:
    before = stored_map(connector_app)

    error = error_of(api(client, "PUT", tenants_path(connector_app, "contoso"), body), 400)

    assert words in error["message"]
    assert stored_map(connector_app) == before


@sqlite_only
def test_a_switched_off_tenant_may_have_no_company(
    client: FlaskClient, connector_app: Flask
) -> None:
    body = {"company_id": None, "enabled": False}
    answer(api(client, "PUT", tenants_path(connector_app, "contoso"), body), 201)
    assert stored_map(connector_app)["contoso"] == (None, False)


@sqlite_only
@pytest.mark.parametrize(
    ("tenant", "words"),
    [
        pytest.param("t" * 256, "at most 255", id="too-long"),
        pytest.param("nul\x00byte", "NUL", id="nul"),
    ],
)
def test_a_tenant_no_alert_could_carry_is_a_400(
    client: FlaskClient, connector_app: Flask, tenant: str, words: str
) -> None:
    before = stored_map(connector_app)
    body = {"company_id": 1}
    error = error_of(api(client, "PUT", tenants_path(connector_app, tenant), body), 400)
    assert words in error["message"]
    assert stored_map(connector_app) == before


@sqlite_only
def test_unknown_tenants_and_integrations_are_404(
    client: FlaskClient, connector_app: Flask
) -> None:
    error = error_of(api(client, "DELETE", tenants_path(connector_app, "contoso")), 404)
    assert "no mapping for tenant 'contoso'" in error["message"]
    for method, path, body in [
        ("GET", "integrations/999/tenants", None),
        ("GET", "integrations/999/tenants/unmapped", None),
        ("PUT", "integrations/999/tenants/acme", {"company_id": 1}),
        ("DELETE", "integrations/999/tenants/acme", None),
    ]:
        error = error_of(api(client, method, path, body), 404)
        assert "no integration 999" in error["message"]


@sqlite_only
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/unmapped"), ("PUT", "/acme"), ("DELETE", "/fabrikam")],
)
def test_the_map_needs_the_api_token(
    client: FlaskClient, connector_app: Flask, method: str, suffix: str
) -> None:
    before = stored_map(connector_app)
    headers = {"Authorization": f"Bearer {HOOK_TOKEN}"}
    path = tenants_path(connector_app) + suffix
    error_of(api(client, method, path, {"company_id": 1}, headers=headers), 401)
    assert stored_map(connector_app) == before


def test_unmapped_tenants_are_those_alerts_carry_that_the_map_lacks(
    client: FlaskClient, connector_app: Flask
) -> None:
    hook(client, "a", "contoso")
    hook(client, "b", "contoso")
    hook(client, "c", "fabrikam")  # mapped
    hook(client, "d", "switched-off")  # mapped (switched off)
    hook(client, "e", "Adventure Works/EU")
    hook(client, "f", "")  # no tenant

    listed = answer(api(client, "GET", tenants_path(connector_app) + "/unmapped"))

    assert listed["total"] == 2
    # Most recently seen first.
    assert [(t["tenant"], t["alerts"]) for t in listed["tenants"]] == [
        ("Adventure Works/EU", 1),
        ("contoso", 2),
    ]
    assert all(t["last_seen_at"] for t in listed["tenants"])
    searched = answer(api(client, "GET", tenants_path(connector_app) + "/unmapped?search=CONT"))
    assert [t["tenant"] for t in searched["tenants"]] == ["contoso"]
    paged = answer(api(client, "GET", tenants_path(connector_app) + "/unmapped?limit=1&offset=1"))
    assert ([t["tenant"] for t in paged["tenants"]], paged["total"]) == (["contoso"], 2)

    # Mapping one takes it off the list.
    answer(api(client, "PUT", tenants_path(connector_app, "contoso"), {"company_id": 1}), 201)
    after = answer(api(client, "GET", tenants_path(connector_app) + "/unmapped"))
    assert [t["tenant"] for t in after["tenants"]] == ["Adventure Works/EU"]
