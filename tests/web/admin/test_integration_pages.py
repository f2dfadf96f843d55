"""The integrations pages through a browser-like client: overview, tenants, mappings, checks."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.sandbox import ApiUser
from connector.persistence.models import Integration, TenantMapping
from tests.web.admin.conftest import csrf_of, sign_in

pytestmark = pytest.mark.with_integration


def _integration_id(app: Flask) -> int:
    with app.extensions["connector"].transaction() as session:
        return int(session.query(Integration.id).one()[0])


def test_the_overview_masks_the_tracking_identifier_and_shows_no_secret(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    sign_in(browser)
    page = browser.get("/admin/integrations").get_data(as_text=True)
    assert api_user.username in page
    assert api_user.secret not in page
    assert api_user.integration_code not in page
    assert "••••" in page
    assert "Check connection" in page


def test_a_hostile_tenant_is_mapped_and_shown_escaped(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = _integration_id(admin_app)
    sign_in(browser)
    page = browser.get(f"/admin/integrations/{integration_id}/tenants").get_data(as_text=True)
    tenant = '<script>alert("x")</script> C:\\Temp\\new'
    answer = browser.post(
        f"/admin/integrations/{integration_id}/tenants",
        data={"csrf_token": csrf_of(page), "tenant": tenant, "company_id": "29683416"},
        headers={"Referer": "http://localhost/admin/"},
    )
    assert answer.status_code == 302
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; C:\\Temp\\new" in page
    with admin_app.extensions["connector"].transaction() as session:
        row = session.query(TenantMapping).filter_by(tenant=tenant).one()
        assert (row.company_id, row.enabled) == (29683416, False)  # the box was not ticked


def test_a_mapping_that_is_not_a_number_is_refused_naming_the_field(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = _integration_id(admin_app)
    sign_in(browser)
    page = browser.get(f"/admin/integrations/{integration_id}/mappings").get_data(as_text=True)
    assert re.search(r'<select id="priority_critical"', page), "priorities picked by name"
    answer = browser.post(
        f"/admin/integrations/{integration_id}/mappings",
        data={"csrf_token": csrf_of(page), "priority_critical": "1; DROP"},
        headers={"Referer": "http://localhost/admin/"},
    )
    assert answer.status_code == 400
    assert "priority of critical: must be a whole number" in answer.get_data(as_text=True)


def test_an_unknown_integration_is_a_404_page(browser: FlaskClient) -> None:
    sign_in(browser)
    answer = browser.get("/admin/integrations/999/tenants")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"


def test_an_id_no_database_holds_is_a_404_page_on_every_admin_route(
    admin_app: Flask, browser: FlaskClient
) -> None:
    sign_in(browser)
    csrf = csrf_of(browser.get("/admin/integrations").get_data(as_text=True))
    referer = {"Referer": "http://localhost/admin/"}
    checked = 0
    for rule in admin_app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/") or "<int:" not in rule.rule:
            continue
        path = re.sub(r"<int:\w+>", str(2**63), rule.rule)
        method = "GET" if "GET" in (rule.methods or ()) else "POST"
        data = {"csrf_token": csrf} if method == "POST" else None
        answer = browser.open(path, method=method, data=data, headers=referer)
        assert answer.status_code == 404, (rule.rule, answer.status_code)
        assert answer.mimetype == "text/html"
        checked += 1
    assert checked >= 5  # tenants, mappings and their forms, check connection


def test_change_starts_from_the_tenants_mapping_as_it_is(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = _integration_id(admin_app)
    sign_in(browser)
    path = f"/admin/integrations/{integration_id}/tenants"
    page = browser.get(path, query_string={"tenant": "switched-off"}).get_data(as_text=True)
    assert 'value="switched-off"' in page
    assert '<input type="checkbox" id="enabled" name="enabled">' in page  # off, as it is
    page = browser.get(path, query_string={"tenant": "fabrikam"}).get_data(as_text=True)
    assert '<option value="29683415" selected>Fabrikam Inc' in page
    assert 'id="enabled" name="enabled" checked' in page
