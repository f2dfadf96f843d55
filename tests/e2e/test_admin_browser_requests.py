"""The delivery-request editor in a real browser: a payload edited with a deliberate error is
refused with the line, corrected, previewed and saved; the next alert's ticket carries the edit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from adapters.sandbox import Sandbox
from tests.e2e.admin import ON_POSTGRESQL, open_integration_tab, sign_in
from tests.e2e.browser import PHONE, Screens
from tests.e2e.harness import Connector, alert

pytestmark = [pytest.mark.e2e, ON_POSTGRESQL]

TITLE = '"title": "##TITLE##",'
#: The edit: a prefix on every ticket title.
PREFIXED = '"title": "[NOC] ##TITLE##",'
#: The same edit with its comma forgotten: JSON notices on the next line, the description.
BROKEN = '"title": "[NOC] ##TITLE##"'

#: The elements reaching past the screen's right edge (to say what to fix).
WIDER_THAN_THE_SCREEN = """
[...document.querySelectorAll("main *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
  .slice(0, 5)
  .map((e) => e.tagName + "." + e.className + ": " + e.textContent.slice(0, 40))
"""


def test_a_payload_with_an_error_is_refused_with_the_line_then_corrected_and_delivered(
    admin_service: Connector, sandbox: Sandbox, page: Page, screens: Screens
) -> None:
    sign_in(page, admin_service)
    page.get_by_role("link", name="Integrations").first.click()
    open_integration_tab(page, "Delivery requests")
    expect(page.get_by_role("heading", name="Delivery requests of default")).to_be_visible()
    screens.save(page, "delivery-requests")

    page.get_by_role("link", name="Edit the active create request").click()
    body = page.get_by_label("Payload template (body)")
    expect(body).to_be_visible()
    expect(page.get_by_text("##EXTERNALTICKETID##", exact=True)).to_be_visible()  # the tokens
    original = body.input_value()
    assert TITLE in original
    title_line = original.splitlines().index("  " + TITLE) + 1

    body.fill(original.replace(TITLE, BROKEN))
    # With script the preview comes from the preview endpoint, the page staying as it is.
    with page.expect_response(re.compile(r"/requests/active/create/preview$")) as answered:
        page.get_by_role("button", name="Preview the unsaved request").click()
    assert answered.value.status == 422
    preview = page.locator("#preview")
    expect(preview).to_contain_text(f"line {title_line + 1}:")
    expect(preview.locator("pre.offending")).to_contain_text('"description": "##DESCRIPTION##",')
    expect(page).to_have_url(re.compile(r"/admin/integrations/\d+/requests/active/create$"))
    page.get_by_role("button", name="Save request").click()
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("Not saved: active create request:")
    expect(problem).to_contain_text(f"Line {title_line + 1} of the payload template:")
    expect(problem.locator("pre.offending")).to_contain_text('"description": "##DESCRIPTION##",')
    expect(body).to_have_value(original.replace(TITLE, BROKEN))  # nothing the admin wrote is lost
    screens.save(page, "delivery-request-refused")

    body.fill(original.replace(TITLE, PREFIXED))
    with page.expect_response(re.compile(r"/requests/active/create/preview$")) as answered:
        page.get_by_role("button", name="Preview the unsaved request").click()
    assert answered.value.status == 200
    expect(preview).to_contain_text('"title": "[NOC] CPU busy above 90 % on srv01"')
    expect(preview).to_contain_text("nothing was sent")
    screens.save(page, "delivery-request-preview")
    page.get_by_role("button", name="Save request").click()
    expect(page.get_by_role("status")).to_contain_text("The active create request is saved")
    expect(page.get_by_role("row", name="Active create")).to_contain_text(
        "changed from the generated request"
    )

    assert admin_service.post(alert(11, "active")).status_code == 202
    admin_service.drain(90)
    titles = [t["title"] for t in sandbox.tickets_with_notes()]
    assert "[NOC] E2E alert 00011" in titles, titles

    # Generating again shows the difference and keeps the edit unless told otherwise.
    page.get_by_role("button", name="Generate delivery options").click()
    expect(page.locator("pre.diff")).to_contain_text('-  "title": "[NOC] ##TITLE##",')
    screens.save(page, "delivery-requests-generate")
    page.get_by_role("button", name="Keep my changes").click()
    expect(page.get_by_role("status")).to_contain_text("Your changes are kept")
    expect(page.get_by_role("row", name="Active create")).to_contain_text(
        "changed from the generated request"
    )


def test_the_request_editor_reads_at_phone_width(
    admin_service: Connector, browser: Browser, screens: Screens
) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in(page, admin_service)
        page.goto(f"{admin_service.base}/admin/integrations")
        open_integration_tab(page, "Delivery requests")
        page.get_by_role("link", name="Edit the acknowledged note request").click()
        expect(page.get_by_label("Payload template (body)")).to_be_visible()
        expect(page.get_by_role("heading", name="Tokens")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(WIDER_THAN_THE_SCREEN)
        assert width <= PHONE["width"], (width, wide)
        screens.save(page, "delivery-request-phone")
    finally:
        context.close()
