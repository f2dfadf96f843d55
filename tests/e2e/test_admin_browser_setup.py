"""Setting an integration up in a real browser, and switching one off and on again.

Against the real service (web and worker processes) and the sandbox: the setup form checks the
connection with the values typed, before saving, and says each failure in words; an inactive
integration keeps an alert without ticketing it, and activating it with the backfill delivers
the ticket. Every page looked at is kept as a screenshot.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from tests import canaries
from tests.e2e.admin import ON_SQLITE, PASSWORD, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert, wait_until

# The failures are checked in Autotask's words, so the sandbox always gives them.
pytestmark = [pytest.mark.e2e, pytest.mark.autotask_words, ON_SQLITE]

WRONG_SECRET = canaries.BROWSER_WRONG_AUTOTASK_SECRET
WRONG_CODE = canaries.BROWSER_WRONG_INTEGRATION_CODE


def permissions(server: SandboxServer, plan: dict[str, list[str]]) -> None:
    """Take the sandbox's API user permissions away (`{}`: give them all back)."""
    response = requests.post(f"{server.url}_sandbox/permissions", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def check(page: Page) -> None:
    """Press "Check connection" and wait for the new page's report."""
    page.evaluate("document.body.dataset.before = 'yes'")
    page.get_by_role("button", name="Check connection").click()
    expect_report(page)


def expect_report(page: Page) -> None:
    """Wait for a page loaded since `check` marked the old one, with its check report."""
    fresh = page.locator("body:not([data-before])")
    expect(fresh.get_by_role("region", name="Connection check")).to_be_visible()


def failed_check(page: Page, label: str) -> Any:
    """The failed check named `label` in the report."""
    return page.locator("ol.checks li.failed").filter(has_text=label)


def test_setting_an_integration_up_through_check_connection(
    admin_service: Connector,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    page: Page,
    screens: Screens,
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    page.get_by_role("link", name="New integration").first.click()
    expect(page.get_by_role("heading", name="New integration")).to_be_visible()
    screens.save(page, "setup-new")

    page.get_by_label("Name (required)", exact=True).fill("Contoso PSA")
    page.get_by_label("API username (required)").fill(api_user.username)
    page.get_by_label("Secret (required)").fill(WRONG_SECRET)
    page.get_by_label("API tracking identifier (required)").fill(api_user.integration_code)
    page.get_by_text("Advanced: zone lookup").click()
    page.get_by_label("Zone lookup URL").fill(sandbox_server.rest_url)
    page.get_by_label("Allowed zone hosts").fill("127.0.0.1")

    # While Autotask is asked, the button says so and cannot be pressed twice: what the button
    # was as the form went (seen by a listener after the page's own) outlives the navigation.
    page.evaluate(
        """() => window.addEventListener("submit", (event) => {
            const button = event.submitter;
            sessionStorage.setItem("progress", JSON.stringify(
                [button.disabled, button.textContent, event.target.getAttribute("aria-busy")]));
        })"""
    )
    check(page)
    assert json.loads(page.evaluate("sessionStorage.getItem('progress')")) == [
        True,
        "Checking…",
        "true",
    ]

    # A wrong secret.
    expect(failed_check(page, "Username, secret and tracking identifier")).to_contain_text(
        "refused its secret (HTTP 401)"
    )
    expect(page.locator("#secret-hint")).to_contain_text("Kept from what you typed before")
    screens.save(page, "setup-wrong-secret")

    # An unknown user (the right secret typed again).
    page.get_by_label("API username (required)").fill("nobody@sandbox.test")
    page.get_by_label("Secret (required)").fill(api_user.secret)
    check(page)
    expect(failed_check(page, "Zone lookup")).to_contain_text(
        "does not know the API user 'nobody@sandbox.test'"
    )
    screens.save(page, "setup-unknown-user")

    # A wrong tracking identifier (the right secret is kept, sealed, from the last submit).
    page.get_by_label("API username (required)").fill(api_user.username)
    page.get_by_label("API tracking identifier (required)").fill(WRONG_CODE)
    check(page)
    expect(failed_check(page, "Username, secret and tracking identifier")).to_contain_text(
        "tracking identifier"
    )
    screens.save(page, "setup-wrong-tracking-identifier")

    # A missing permission.
    permissions(sandbox_server, {"Tickets": ["create"], "TicketNotes": ["create"]})
    page.get_by_label("API tracking identifier (required)").fill(api_user.integration_code)
    check(page)
    expect(failed_check(page, "Create tickets")).to_contain_text(
        "does not allow it to create tickets"
    )
    expect(failed_check(page, "Add ticket notes")).to_contain_text(
        "does not allow it to add notes to tickets"
    )
    screens.save(page, "setup-missing-permission")

    # Everything right: the lists are read, the settings picked by name, the integration saved.
    permissions(sandbox_server, {})
    check(page)
    expect(page.get_by_text("every check passed")).to_be_visible()
    content = page.content()
    for secret in (api_user.secret, api_user.integration_code, WRONG_SECRET, WRONG_CODE):
        assert secret not in content
    page.get_by_label("Default company (alerts of an unmapped tenant)").select_option(
        label="Northwind Traders"
    )
    queue = page.get_by_label("Queue", exact=True)
    queue.select_option(index=1)
    chosen_queue = int(queue.input_value())
    screens.save(page, "setup-check-passed")
    page.get_by_role("button", name="Create integration").click()
    expect(page.get_by_text("Integration “Contoso PSA” created")).to_be_visible()
    expect(page.get_by_role("button", name="Generate delivery options")).to_be_visible()
    screens.save(page, "setup-created")

    listed = admin_service.api("integrations").json()["integrations"]
    (created,) = [row for row in listed if row["name"] == "Contoso PSA"]
    assert created["secret_set"] is True and created["active"] is True
    settings = admin_service.api(f"integrations/{created['id']}").json()["settings"]
    assert settings["default_company_id"] == 29683416
    assert settings["queue_id"] == chosen_queue
    content = page.content()
    for secret in (api_user.secret, api_user.integration_code, PASSWORD):
        assert secret not in content


def test_an_inactive_integration_keeps_an_alert_and_activating_delivers_it(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    page.get_by_role("link", name="default: active, change").click()
    expect(page.get_by_role("heading", name="default: active")).to_be_visible()
    page.get_by_role("button", name="Deactivate default").click()
    expect(page.get_by_role("heading", name="default: inactive")).to_be_visible()
    screens.save(page, "deactivated")

    answer = admin_service.post(alert(31, "active", title="Kept while inactive"))
    assert answer.status_code == 202
    assert answer.json()["accepted"][0]["disposition"].startswith("held")
    # Held, with a worker running: it is not claimed, and no ticket is made.
    assert admin_service.deliveries_by_state() == {"held": 1}
    assert not [t for t in sandbox.tickets_with_notes() if t["title"] == "Kept while inactive"]

    page.reload()
    expect(page.locator("#held-recent")).to_have_text("1")
    expect(page.locator("#tickets-to-create")).to_have_text("1")
    screens.save(page, "activation")
    assert admin_service.deliveries_by_state() == {"held": 1}
    page.get_by_role("button", name="Activate and deliver them").click()
    expect(page.get_by_text("1 held deliveries are being sent")).to_be_visible()
    expect(page.get_by_role("link", name="default: active, change")).to_be_visible()

    def ticketed() -> bool:
        return any(t["title"] == "Kept while inactive" for t in sandbox.tickets_with_notes())

    wait_until(ticketed, 90, "the held alert's ticket in the sandbox")
    admin_service.drain(60)
    assert admin_service.deliveries_by_state() == {"done": 1}
    screens.save(page, "activated")


def test_the_setup_form_reads_at_phone_width(
    admin_service: Connector, browser: Browser, screens: Screens
) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in(page, admin_service)
        page.goto(f"{admin_service.base}/admin/integrations")
        page.get_by_role("link", name="Edit").first.click()
        expect(page.get_by_label("Queue", exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        screens.save(page, "setup-edit-phone")
    finally:
        context.close()
