"""The test ticket page and the emergency contact in a real browser, against the real service.

A test ticket sent from the page is found in the sandbox by the title it was sent with; the
emergency contact's test mail arrives at a real local SMTP server (aiosmtpd).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from adapters.sandbox import ApiUser, Sandbox
from tests.e2e.admin import ON_POSTGRESQL, PASSWORD, open_integration_tab, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector
from tests.smtp_inbox import Inbox, smtp_inbox

pytestmark = [pytest.mark.e2e, ON_POSTGRESQL]

TITLE = 'Browser test ticket: "probe" <ok> – Überprüfung'
CONTACT = "night-shift@example.net"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """The SMTP server the service mails."""
    with smtp_inbox() as found:
        yield found


@pytest.fixture
def connector_settings(connector_settings: dict[str, Any], inbox: Inbox) -> dict[str, Any]:
    """The service's settings, with the inbox as its mail server."""
    return {**connector_settings, **inbox.settings()}


def test_a_test_ticket_sent_from_the_page_is_in_the_sandbox(
    admin_service: Connector, sandbox: Sandbox, api_user: ApiUser, page: Page, screens: Screens
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    page.get_by_role("link", name="Test ticket").click()
    expect(page.get_by_role("heading", name="Test ticket: default")).to_be_visible()

    # Companies are picked by name, narrowed by a search in Autotask's list.
    page.get_by_label("Company name contains").fill("north")
    page.get_by_role("button", name="Search").click()
    page.get_by_label("Company", exact=True).select_option(label="Northwind Traders")
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Text").fill("Sent from the admin form by a browser test.\nSecond line.")
    page.get_by_label("Complete it at once").check()
    screens.save(page, "test-ticket")

    # The progress: right after the submit the button is disabled and says Sending…; what it
    # showed is kept in the tab's sessionStorage, read once the answer page is there.
    page.evaluate(
        """() => {
          const form = document.querySelector('form[data-progress]');
          form.addEventListener('submit', () => setTimeout(() => {
            const button = form.querySelector('button');
            sessionStorage.setItem('progress', JSON.stringify(
              [button.textContent, button.disabled, form.getAttribute('aria-busy')]));
          }, 0));
        }"""
    )
    page.get_by_role("button", name="Send test ticket").click()

    expect(page.get_by_role("status")).to_contain_text("and completed it")
    (ticket,) = [t for t in sandbox.tickets_with_notes() if t["title"] == TITLE]
    assert ticket["companyID"] == 29683416  # Northwind Traders, as picked
    assert ticket["status"] == 5  # completed at once
    assert "Second line." in ticket["description"]
    expect(page.get_by_role("status")).to_contain_text(
        f"Autotask made the test ticket {ticket['ticketNumber']}"
    )
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(str(ticket["id"]))
    expect(facts).to_contain_text(ticket["ticketNumber"])
    expect(facts).to_contain_text("yes: Autotask reports status 5")
    expect(page.locator("pre.exchange").first).to_contain_text("Browser test ticket")
    source = page.content()
    for secret in (api_user.secret, api_user.integration_code, PASSWORD):
        assert secret not in source
    shown = page.evaluate("JSON.parse(sessionStorage.getItem('progress'))")
    assert shown == ["Sending…", True, "true"]
    screens.save(page, "test-ticket-sent")

    # At phone width nothing but the headers' table scrolls sideways: the page fits.
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    screens.save(page, "test-ticket-sent-phone")


def test_the_emergency_contact_gets_a_test_mail(
    admin_service: Connector, inbox: Inbox, page: Page, screens: Screens
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    open_integration_tab(page, "Emergency contact")
    expect(page.get_by_role("heading", name="Emergency contact: default")).to_be_visible()
    expect(page.get_by_text("No address is saved yet")).to_be_visible()

    page.get_by_label("E-mail address").fill(CONTACT)
    page.get_by_role("button", name="Save address").click()
    expect(page.get_by_role("status")).to_contain_text(f"Emergency contact saved: {CONTACT}.")

    page.get_by_role("button", name="Send test mail").click()
    expect(page.get_by_role("status")).to_contain_text(f"Test mail sent to {CONTACT}")
    (mail,) = inbox.wait_for(1)
    assert mail.rcpt_tos == [CONTACT]
    assert mail.message["Subject"] == "Test mail from Autotask Alert Connector: integration default"
    assert "integration 'default'" in mail.body
    screens.save(page, "emergency-contact")
