"""Map by identical name and monitor overrides, through a browser-like client, on the sandbox."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.domain import CompanyChoice
from connector.integrations.settings import load_settings
from connector.integrations.tenants import identical_name_matches
from connector.persistence.models import Integration, TenantMapping
from tests.conftest import API_TOKEN, GENERIC_ALERT, HOOK_TOKEN
from tests.web.admin.conftest import csrf_of, sign_in

pytestmark = pytest.mark.with_integration


def _integration(app: Flask) -> Integration:
    with app.extensions["connector"].transaction() as session:
        return session.query(Integration).one()


def _alert(app: Flask, **fields: str) -> None:
    answer = app.test_client().post(
        "/hooks/generic",
        json={**GENERIC_ALERT, **fields},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert answer.status_code == 202, answer.get_json()


def _tenants(app: Flask) -> dict[str, int | None]:
    with app.extensions["connector"].transaction() as session:
        return {row.tenant: row.company_id for row in session.query(TenantMapping)}


# -- map by identical name -------------------------------------------------------------------------


def test_a_name_matches_in_any_case_and_spacing_and_several_are_never_guessed() -> None:
    companies = [
        CompanyChoice(1, "Contoso Ltd"),
        CompanyChoice(2, "Contoso Ltd Europe"),
        CompanyChoice(3, "Twin Co"),
        CompanyChoice(4, "twin co"),
    ]

    def find(name: str) -> list[CompanyChoice]:
        return [c for c in companies if name.casefold() in c.name.casefold()]

    matches = identical_name_matches(["  contoso   LTD ", "Twin Co", "Globex"], find)
    assert [(m.tenant, m.company, m.problem) for m in matches] == [
        ("  contoso   LTD ", companies[0], ""),
        ("Twin Co", None, "2 companies have this name"),
        ("Globex", None, "no company has this name"),
    ]


def test_unmapped_tenants_are_mapped_by_identical_name_after_confirmation(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration = _integration(admin_app)
    _alert(admin_app, id="a", tenant="CONTOSO LTD")
    _alert(admin_app, id="b", tenant="Northwind  Traders")
    _alert(admin_app, id="c", tenant='Globex "HQ" C:\\Temp 🚨')
    sign_in(browser)
    tenants_page = browser.get(f"/admin/integrations/{integration.id}/tenants")
    assert "Map by identical name" in tenants_page.get_data(as_text=True)
    path = f"/admin/integrations/{integration.id}/tenants/identical-names"
    page = browser.get(path).get_data(as_text=True)
    assert "Contoso Ltd" in page and "Northwind Traders" in page
    assert "Globex &#34;HQ&#34; C:\\Temp 🚨</a>: no company has this name" in page
    assert _tenants(admin_app) == {
        "fabrikam": 29683415,
        "northwind": 29683416,
        "switched-off": None,
    }

    # Untick Northwind: only Contoso is mapped.
    contoso = page.index("CONTOSO LTD")
    index = page.rfind('name="map" value="', 0, contoso)
    value = page[index:].split('value="')[1].split('"')[0]
    answer = browser.post(
        path,
        data={
            "csrf_token": csrf_of(page),
            "map": [value],
            f"tenant_{value}": "CONTOSO LTD",
            f"company_{value}": "29683414",
        },
    )
    assert answer.status_code == 302
    assert _tenants(admin_app)["CONTOSO LTD"] == 29683414
    assert "Northwind  Traders" not in _tenants(admin_app)
    again = browser.get(path).get_data(as_text=True)
    assert "CONTOSO LTD" not in again


def test_the_api_proposes_the_same_matches(admin_app: Flask) -> None:
    integration = _integration(admin_app)
    _alert(admin_app, id="a", tenant="fabrikam inc")
    _alert(admin_app, id="b", tenant="Initech")
    answer = admin_app.test_client().get(
        f"/api/v1/integrations/{integration.id}/tenants/identical-names",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert answer.status_code == 200
    assert {m["tenant"]: (m["company"], m["problem"]) for m in answer.get_json()["matches"]} == {
        "fabrikam inc": ({"id": 29683415, "name": "Fabrikam Inc"}, None),
        "Initech": (None, "no company has this name"),
    }


# -- monitor overrides -----------------------------------------------------------------------------


def test_an_override_is_picked_from_the_lists_saved_changed_and_removed(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration = _integration(admin_app)
    _alert(admin_app, id="a", monitor="Disk C:\\ usage")
    sign_in(browser)
    path = f"/admin/integrations/{integration.id}/overrides"
    page = browser.get(path).get_data(as_text=True)
    assert "Disk C:\\ usage" in page  # offered: seen in alerts
    assert '<select id="queue_id" name="queue_id">' in page  # Autotask's list, not a number
    answer = browser.post(
        path,
        data={"csrf_token": csrf_of(page), "monitor": "Disk C:\\ usage", "queue_id": "29682833"},
    )
    assert answer.status_code == 302
    saved = load_settings(_integration(admin_app).settings).monitor_overrides
    assert saved["Disk C:\\ usage"].queue_id == 29682833
    assert saved["Disk C:\\ usage"].priority is None

    page = browser.get(path, query_string={"monitor": "Disk C:\\ usage"}).get_data(as_text=True)
    assert "Change an override" in page
    refused = browser.post(
        path,
        data={"csrf_token": csrf_of(page), "monitor": "Disk C:\\ usage", "priority": "high"},
    )
    assert refused.status_code == 400
    assert "Priority: must be a whole number" in refused.get_data(as_text=True)
    assert "Disk C:\\ usage" in refused.get_data(as_text=True).split("Save override")[0]

    browser.post(f"{path}/delete", data={"csrf_token": csrf_of(page), "monitor": "Disk C:\\ usage"})
    assert load_settings(_integration(admin_app).settings).monitor_overrides == {}


def test_an_override_needs_a_monitor(admin_app: Flask, browser: FlaskClient) -> None:
    integration = _integration(admin_app)
    sign_in(browser)
    path = f"/admin/integrations/{integration.id}/overrides"
    page = browser.get(path).get_data(as_text=True)
    assert "No monitor has its own settings" in page
    refused = browser.post(path, data={"csrf_token": csrf_of(page), "monitor": "  "})
    assert refused.status_code == 400
    assert "monitor: name the monitor" in refused.get_data(as_text=True)
