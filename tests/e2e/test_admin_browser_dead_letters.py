"""Dead letters in a real browser against the real service and the sandbox: a delivery Autotask
refuses for good is listed with Autotask's words; the admin fixes the tenant's company on the
tenants page, presses Replay, and the ticket is made. Discard asks for a reason; Replay all asks
first and leaves the discarded alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from adapters.sandbox import Sandbox
from connector.persistence.models import TenantMapping
from tests.e2e.admin import ON_SQLITE, open_integration_tab, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert, wait_until

# The dead letter's reason is Autotask's own words: the sandbox gives them, never opaque errors.
pytestmark = [pytest.mark.e2e, pytest.mark.autotask_words, ON_SQLITE]

UNKNOWN_COMPANY = 999
NORTHWIND = 29683416


def dead_letters_of(service: Connector, tenant: str, numbers: list[int]) -> list[dict[str, Any]]:
    """Alerts of `tenant` (mapped to a company Autotask does not know) until each is dead."""
    with service.services.transaction() as session:
        session.add(TenantMapping(integration_id=1, tenant=tenant, company_id=UNKNOWN_COMPANY))
    for number in numbers:
        assert service.post(alert(number, "active", tenant=tenant)).status_code == 202
    wait_until(
        lambda: service.deliveries_by_state() == {"dead": len(numbers)}, 60, "the dead letters"
    )
    dead: list[dict[str, Any]] = service.api("deliveries?state=dead").json()["deliveries"]
    return sorted(dead, key=lambda d: d["id"])


def test_a_dead_letter_is_replayed_after_the_tenant_is_mapped_right(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    [dead] = dead_letters_of(admin_service, "Contoso Ltd", [1])

    sign_in(page, admin_service)
    page.get_by_role("link", name="Dead letters").first.click()
    expect(page.get_by_role("heading", name="Dead letters", exact=True)).to_be_visible()
    letter = page.locator(f"#delivery-{dead['id']}")
    expect(letter).to_contain_text("E2E alert 00001")
    expect(letter).to_contain_text("Contoso Ltd")
    expect(letter).to_contain_text("create a ticket")
    expect(letter).to_contain_text("companyID of type: Account does not exist or is invalid")
    expect(letter.get_by_role("link", name="E2E alert 00001")).to_have_attribute(
        "href", f"/admin/alerts/{dead['alert_id']}"
    )
    screens.save(page, "dead-letters")

    # The fix: the tenant's company, picked by name on the tenants page.
    page.get_by_role("link", name="Integrations").first.click()
    open_integration_tab(page, "Tenants")
    page.get_by_label("Tenant", exact=True).fill("Contoso Ltd")
    page.get_by_label("Company", exact=True).select_option(label="Northwind Traders")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_role("status")).to_contain_text("changed")

    page.get_by_role("link", name="Dead letters").first.click()
    page.get_by_role("button", name=f"Replay dead letter {dead['id']}").click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"Dead letter {dead['id']} is queued again"
    )

    wait_until(lambda: len(sandbox.tickets_with_notes()) == 1, 60, "the replayed ticket")
    [ticket] = sandbox.tickets_with_notes()
    assert ticket["companyID"] == NORTHWIND
    assert ticket["title"] == "E2E alert 00001"
    wait_until(lambda: admin_service.deliveries_by_state() == {"done": 1}, 60, "done")
    page.reload()
    expect(page.get_by_text("No dead letter: every delivery went through")).to_be_visible()
    screens.save(page, "dead-letters-replayed")


def test_discard_asks_why_and_replay_all_asks_first(
    admin_service: Connector, sandbox: Sandbox, page: Page, browser: Browser, screens: Screens
) -> None:
    first, second = dead_letters_of(admin_service, "Tailspin", [2, 3])
    sign_in(page, admin_service)
    page.goto(f"{admin_service.base}/admin/dead-letters")

    kept = page.locator(f"#delivery-{first['id']}")
    kept.get_by_text("Discard…").click()
    reason = kept.get_by_label("Why discard it? (required)")
    expect(reason).to_have_attribute("required", "")
    reason.fill("a test alert from the staging monitor")
    screens.save(page, "dead-letters-discard")
    kept.get_by_role("button", name="Discard", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(f"Dead letter {first['id']} discarded")
    expect(page.locator(f"#delivery-{first['id']}")).to_have_count(0)

    page.get_by_label("Show").select_option(label="Discarded")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"#delivery-{first['id']}")).to_contain_text(
        "a test alert from the staging monitor"
    )
    screens.save(page, "dead-letters-discarded")

    page.goto(f"{admin_service.base}/admin/dead-letters")
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.get_by_role("button", name="Replay all dead letters (1)").click()
    expect(page.get_by_role("status").first).to_contain_text("1 dead letter queued again")
    assert asked and "Replay all 1 dead letter" in asked[0]

    # The other one was tried again (its tenant still points nowhere: dead again); the
    # discarded one was left alone.
    def tried_again() -> bool:
        dead = admin_service.api("deliveries?state=dead").json()["deliveries"]
        return [(d["id"], d["attempts"]) for d in dead] == [(second["id"], 2)]

    wait_until(tried_again, 60, "the replayed dead letter to be tried again")
    assert admin_service.deliveries_by_state() == {"dead": 1, "discarded": 1}
    assert sandbox.tickets_with_notes() == []

    # A sender's webhook refused (its status word unknown): kept with its body, discarded.
    refused = admin_service.post(alert(4, "raised", tenant="Tailspin"))
    assert refused.status_code == 400
    page.goto(f"{admin_service.base}/admin/dead-letters?show=waiting")  # a fresh load
    hook = page.locator("#webhooks li.item").first
    expect(hook).to_contain_text("generic · answered 400")
    hook.get_by_text("Show the body").click()
    expect(hook.locator("pre")).to_contain_text('"status": "raised"')
    hook.get_by_text("Discard…").click()
    hook.get_by_label("Why discard it? (required)").fill("our monitor's typo, fixed at the source")
    screens.save(page, "dead-letters-webhooks")
    hook.get_by_role("button", name="Discard", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("discarded")
    expect(page.get_by_text("No rejected webhook waiting")).to_be_visible()

    phone = browser.new_context(viewport=PHONE)
    try:
        small = phone.new_page()
        sign_in(small, admin_service)
        small.goto(f"{admin_service.base}/admin/dead-letters?show=all")
        expect(small.get_by_role("heading", name="Dead letters", exact=True)).to_be_visible()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        screens.save(small, "dead-letters-phone")
    finally:
        phone.close()
