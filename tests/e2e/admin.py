"""The admin form in the browser: the first admin, a running service with it, a page, sign-in.

A browser test is slow (a service, a worker and a browser each time), so each browser module runs
on ONE database, SQLite or PostgreSQL alternating between modules (`ON_SQLITE`, `ON_POSTGRESQL`
in its `pytestmark`): both databases are driven through the browser, and every page's own tests
(tests/web/admin/) run on both.

The fixtures are made available to every e2e module by tests/e2e/conftest.py: a browser test
takes `admin_service` and `page` and signs in with `sign_in`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import canaries
from tests.e2e.browser import DESKTOP, Screens
from tests.e2e.harness import Connector

#: A browser module's database (see the module docstring).
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ON_POSTGRESQL = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

ADMIN = "ops-admin@example.net"
#: Also a canary: it must appear in no page and no log.
PASSWORD = canaries.BROWSER_ADMIN_PASSWORD


@pytest.fixture
def admin_service(connector_settings: dict[str, Any], tmp_path: Path) -> Iterator[Connector]:
    """The connector with its first admin from the environment, as unattended starts make it."""
    settings = {**connector_settings, "ADMIN_USERNAME": ADMIN, "ADMIN_PASSWORD": PASSWORD}
    running = Connector(settings, tmp_path)
    try:
        running.start_web()
        running.start_worker()
        yield running
    finally:
        running.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop size, downloads allowed."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(30_000)  # a loaded 2-core machine
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, service: Connector, screens: Screens | None = None) -> None:
    """Sign in through the form, as an admin does."""
    page.goto(f"{service.base}/admin/")
    expect(page).to_have_url(f"{service.base}/admin/login?next=/admin/")
    if screens:
        screens.save(page, "login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {ADMIN}").first).to_be_visible()


def open_integration_tab(page: Page, tab: str) -> None:
    """From the integrations overview, open the (first) integration's page `tab`, as an admin
    does: its Mappings, then the tab among the integration's tabs."""
    page.get_by_role("link", name="Mappings", exact=True).first.click()
    tabs = page.get_by_role("navigation", name="This integration")
    tabs.get_by_role("link", name=tab, exact=True).click()
    expect(tabs.get_by_role("link", name=tab, exact=True)).to_have_attribute("aria-current", "page")
