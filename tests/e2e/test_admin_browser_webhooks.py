"""The webhooks page in a real browser against the real service: a credential issued there
posts an alert that becomes a ticket in the sandbox, and revoked there it is refused.

The token read from the page is this test's own canary (made for the test, revoked by it); the
one screenshot showing it says so in its name.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from adapters.sandbox import Sandbox
from tests.e2e.admin import ON_SQLITE, open_integration_tab, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert

pytestmark = [pytest.mark.e2e, ON_SQLITE]

LABEL = "Browser canary"


def post_alert(service: Connector, index: int, token: str) -> requests.Response:
    """POST generic alert `index` to the running service with `token`."""
    return service.session.post(
        f"{service.base}/hooks/generic",
        json=alert(index, "active"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_a_token_issued_in_the_browser_tickets_alerts_until_it_is_revoked(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    open_integration_tab(page, "Webhooks")
    expect(page.get_by_role("heading", name="Webhooks of default")).to_be_visible()
    # The sending side's snippets name this installation.
    expect(page.locator("#url-generic")).to_have_text(f"{admin_service.base}/hooks/generic")
    screens.save(page, "webhooks")

    page.get_by_label("Scheme", exact=True).select_option("bearer")
    page.get_by_label("Source", exact=True).select_option(label="Generic JSON")
    page.get_by_label("Label", exact=True).fill(LABEL)
    page.get_by_role("button", name="Issue credential").click()
    expect(page.get_by_role("status")).to_contain_text("it will not be shown again")
    token = page.locator("#secret").inner_text().strip()
    assert len(token) >= 40
    expect(page.locator("pre.snippet").first).to_contain_text(f"Bearer {token}")

    # The copy button (progressive JavaScript) puts the token on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator(".copyable .copied").first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
    screens.save(page, "webhook-issued-SHOWS-TEST-CANARY-SECRET")

    assert post_alert(admin_service, 21, token).status_code == 202
    admin_service.drain(90)
    titles = [ticket["title"] for ticket in sandbox.tickets_with_notes()]
    assert titles.count("E2E alert 00021") == 1

    page.get_by_role("link", name="← Webhooks of default").click()
    row = page.get_by_role("row", name=re.compile(LABEL))
    expect(row).to_contain_text("Live")
    assert token not in page.content()
    row.get_by_role("link", name=f"Revoke {LABEL}").click()
    expect(page.get_by_role("heading", name="Revoke a webhook credential")).to_be_visible()
    screens.save(page, "webhook-revoke-confirm")
    page.get_by_role("button", name="Revoke credential").click()
    expect(page.get_by_role("status")).to_contain_text(f"Revoked “{LABEL}”")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("link", name=f"Revoke {LABEL}")).to_have_count(0)
    screens.save(page, "webhooks-revoked")

    refused = post_alert(admin_service, 22, token)
    assert refused.status_code == 401
    assert token not in refused.text

    # Readable at phone width: only the wide table and the snippets scroll sideways.
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_role("heading", name="Webhooks of default")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screens.save(page, "webhooks-phone")
