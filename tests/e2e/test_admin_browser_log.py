"""The alert pages and the integration log in a real browser, against the real service and the
sandbox: an alert sent to the service shows its ticket and its calls, and a call opens to the
request as it was sent (credentials redacted)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from adapters.sandbox import Sandbox
from tests import canaries
from tests.e2e.admin import ON_POSTGRESQL, PASSWORD, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert

pytestmark = [pytest.mark.e2e, ON_POSTGRESQL]

SECRET = canaries.AUTOTASK_SECRET


def test_an_alerts_page_shows_its_ticket_and_its_calls_open_to_the_request(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    assert admin_service.post(alert(3, "active", title="Disk full on srv03")).status_code == 202
    admin_service.drain(90)
    (ticket,) = [t for t in sandbox.tickets_with_notes() if t["title"] == "Disk full on srv03"]

    sign_in(page, admin_service)
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    screens.save(page, "alerts")
    page.get_by_role("link", name="Disk full on srv03").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    alert_url = page.url
    tickets = page.locator("section", has=page.get_by_role("heading", name="Tickets"))
    # The ticket's id always; its number only where Autotask's answer carried it (SOAP) or a
    # request uses it (REST reads it back then): no read-back call just for the page.
    expect(tickets).to_contain_text(str(ticket["id"]))
    expect(page.get_by_text("queued for delivery").first).to_be_visible()

    # Every call opens (no script needed); the create's shows the request body as sent.
    for summary in page.locator("summary", has_text="Request and response of call").all():
        summary.click()
    create = page.locator("details[open]", has_text="Disk full on srv03").first
    expect(create).to_be_visible()
    expect(create).to_contain_text("<redacted>")  # the credentials, REST or SOAP
    screens.save(page, "alert")

    page.get_by_role("link", name="This alert's calls in the integration log").click()
    expect(page.get_by_role("heading", name="Integration log")).to_be_visible()
    expect(page.locator("table.calls tbody tr:not(.exchange-row)").first).to_contain_text("Tickets")
    screens.save(page, "integration-log")
    assert SECRET not in page.content()
    assert PASSWORD not in page.content()

    # At phone width only the wide tables scroll sideways: the pages themselves fit.
    page.set_viewport_size(PHONE)
    log_url = page.url
    for url, name in ((alert_url, "alert-phone"), (log_url, "integration-log-phone")):
        page.goto(url)
        page.locator("summary").first.click()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (name, width)
        screens.save(page, name)
