"""The admin web form in a real browser (Debian's chromium, headless) against the real service.

The service runs as real processes (web and worker) on the test database, against the sandbox;
every page looked at is kept as a screenshot (tests/e2e/browser.py).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from adapters.sandbox import Sandbox
from tests.e2e.admin import ON_POSTGRESQL, PASSWORD, open_integration_tab, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert

pytestmark = [pytest.mark.e2e, ON_POSTGRESQL]


def test_an_hour_of_api_activity_opens_and_downloads_as_csv(
    admin_service: Connector, page: Page, screens: Screens
) -> None:
    admin_service.post(alert(1, "active", title='Disk C:\\ full on "srv01" 💾'))
    admin_service.drain(90)

    sign_in(page, admin_service, screens)
    screens.save(page, "home")
    page.get_by_role("link", name="API activity").first.click()
    expect(page.get_by_role("heading", name="API activity by hour")).to_be_visible()
    screens.save(page, "api-activity")

    # The hour with calls: its total links to the hour's calls.
    busy = page.locator("table.grid tbody tr td:last-child a").first
    total = int(busy.inner_text())
    assert total >= 1  # the zone lookup is not counted; the create and its note are
    busy.click()
    expect(page.get_by_role("heading", name="API calls")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(total)
    expect(page.locator("table tbody")).to_contain_text("Tickets")
    screens.save(page, "api-activity-hour")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download every call of this hour (CSV)").click()
    download = downloading.value
    text = Path(download.path()).read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) == total
    assert {line["entity"] for line in lines} >= {"Tickets"}
    assert all(line["integration"] == "default" for line in lines)
    assert PASSWORD not in text


def test_the_pages_read_at_phone_width(
    admin_service: Connector, browser: Browser, screens: Screens
) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in(page, admin_service)
        page.goto(f"{admin_service.base}/admin/api-activity")
        expect(page.get_by_role("heading", name="API activity by hour")).to_be_visible()
        # Nothing but the wide table scrolls sideways: the page itself fits the phone.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        screens.save(page, "api-activity-phone")
    finally:
        context.close()


def test_a_tenant_mapped_and_a_priority_changed_apply_to_the_next_alert(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    """Check connection, map a tenant to a company and change the priority map, all picked by
    name from Autotask's lists; the next alert of that tenant is ticketed so, no restart."""
    tenant = 'Tailspin "Toys" C:\\ops 🚀'
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    screens.save(page, "integrations")

    page.get_by_role("button", name="Check connection").click()
    expect(page.get_by_role("status")).to_contain_text("every check passed")
    screens.save(page, "check-connection")

    page.goto(f"{admin_service.base}/admin/integrations")
    open_integration_tab(page, "Tenants")
    page.get_by_label("Tenant", exact=True).fill(tenant)
    page.get_by_label("Company", exact=True).select_option(label="Northwind Traders")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_role("status")).to_contain_text("mapped")
    expect(page.get_by_role("row", name=tenant)).to_contain_text("Northwind Traders")
    screens.save(page, "tenants")

    page.goto(f"{admin_service.base}/admin/integrations")
    page.get_by_role("link", name="Mappings", exact=True).first.click()
    page.get_by_label("Critical", exact=True).select_option(label="Low")
    page.get_by_role("button", name="Save mappings").click()
    expect(page.get_by_role("status")).to_contain_text("Mappings saved")
    expect(page.get_by_label("Critical", exact=True)).to_have_value("3")
    screens.save(page, "mappings")

    assert (
        admin_service.post(alert(7, "active", severity="critical", tenant=tenant)).status_code
        == 202
    )
    admin_service.drain(90)
    (ticket,) = [t for t in sandbox.tickets_with_notes() if t["title"] == "E2E alert 00007"]
    assert ticket["companyID"] == 29683416  # Northwind Traders, as mapped a moment ago
    assert ticket["priority"] == 3  # Low, as the priority map now says


def test_a_refused_mapping_says_why_and_keeps_the_old_one(
    admin_service: Connector, page: Page
) -> None:
    sign_in(page, admin_service)
    page.goto(f"{admin_service.base}/admin/integrations")
    open_integration_tab(page, "Tenants")
    # The map's table, once the tenants page is there (count() does not wait for it).
    expect(page.get_by_role("heading", name="The map (3)")).to_be_visible()
    rows_before = page.locator("table tbody tr").count()
    assert rows_before == 3
    page.get_by_label("Tenant", exact=True).fill("   ")  # blanks: no alert carries that
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_role("status")).to_contain_text("Not saved: tenant: must not be empty")
    expect(page.locator("table tbody tr")).to_have_count(rows_before)
