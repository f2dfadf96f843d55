"""The delivery-request editor through a browser-like client: list, edit, preview, generate."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser
from adapters.targets.autotask.profile import REST_PROFILE
from connector.payloads.requests import SLOTS, generate_requests
from connector.payloads.tokens import TOKENS
from connector.persistence.models import DeliveryRequest, Integration
from tests.conftest import HOOK_TOKEN
from tests.web.admin.conftest import csrf_of, sign_in

pytestmark = pytest.mark.with_integration


@pytest.fixture
def admin_settings(
    admin_settings: dict[str, object], integration_config: dict[str, object]
) -> dict[str, object]:
    """The marked module's settings; naming the integration lets a test parametrize
    `api_flavour`."""
    return admin_settings


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REFERER = {"Referer": "http://localhost/admin/"}

#: The comma after line 3 is missing: JSON finds out at line 4.
BAD_NOTE = """{
  "description": "##NOTETEXT##",
  "noteType": ##NOTETYPE##
  "publish": ##PUBLISH##,
  "ticketID": ##EXTERNALTICKETID##
}
"""


def integration_id(app: Flask) -> int:
    with app.extensions["connector"].transaction() as session:
        return int(session.scalars(select(Integration.id)).one())


def stored(app: Flask) -> dict[tuple[str, str], str]:
    """Every stored request's body by (status, action)."""
    with app.extensions["connector"].transaction() as session:
        rows = session.scalars(select(DeliveryRequest))
        return {(row.status, row.action): row.body for row in rows}


def deliver_setting(app: Flask) -> dict[str, bool]:
    with app.extensions["connector"].transaction() as session:
        integration = session.get(Integration, integration_id(app))
        assert integration is not None
        return dict((integration.settings or {}).get("deliver") or {})


def default_body(status: str, action: str) -> str:
    (spec,) = [
        s
        for s in generate_requests(REST_PROFILE)
        if (s.status.value, s.action.value) == (status, action)
    ]
    return spec.body


def textarea(page: str, name: str) -> str:
    """A textarea's value as a browser reads it (the newline after the tag is not part of it)."""
    found = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def edit_form(
    browser: FlaskClient, iid: int, status: str, action: str, **changes: str
) -> dict[str, str]:
    """The edit form of a request as a browser would send it, with `changes`."""
    page = browser.get(f"/admin/integrations/{iid}/requests/{status}/{action}").get_data(
        as_text=True
    )
    form = {
        "csrf_token": csrf_of(page),
        "method": "POST",
        "url": html.unescape(re.search(r'id="url" name="url" value="([^"]*)"', page)[1]),  # type: ignore[index]
        "headers": textarea(page, "headers"),
        # Browsers send a textarea's line ends as CRLF.
        "body": textarea(page, "body").replace("\n", "\r\n"),
        "format": "json",
        "deliver": "on",
        "op": "save",
    }
    return form | changes


@sqlite_only
def test_the_list_shows_every_request_and_is_linked_from_the_integrations_tabs_and_the_mappings(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)

    tenants = browser.get(f"/admin/integrations/{iid}/tenants").get_data(as_text=True)
    mappings = browser.get(f"/admin/integrations/{iid}/mappings").get_data(as_text=True)
    page = browser.get(f"/admin/integrations/{iid}/requests").get_data(as_text=True)

    link = f'href="/admin/integrations/{iid}/requests">Delivery requests</a>'
    assert link in tenants  # the integration's tabs
    assert link in mappings
    for status, action in SLOTS:
        assert f'href="/admin/integrations/{iid}/requests/{status.value}/{action.value}"' in page
    assert page.count("<td>on</td>") == len(SLOTS)
    assert "##ZONEURL##Tickets/##EXTERNALTICKETID##/Notes" in page
    assert "changed from the generated request" not in page


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_request_is_edited_and_saved_with_the_token_reference_beside_it(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    page = browser.get(f"/admin/integrations/{iid}/requests/active/create").get_data(as_text=True)
    assert '<label for="body">Payload template (body)</label>' in page
    assert 'class="mono"' in page
    assert textarea(page, "body") == default_body("active", "create")
    for token in TOKENS:
        assert f"<code>##{token.name}##</code>" in page
        assert token.meaning in html.unescape(page)

    body = default_body("active", "create").replace("##TITLE##", "[NOC] ##TITLE##")
    assert body != default_body("active", "create")
    answer = browser.post(
        f"/admin/integrations/{iid}/requests/active/create",
        data=edit_form(browser, iid, "active", "create", body=body.replace("\n", "\r\n"))
        | {"deliver": ""},
        headers=REFERER,
    )

    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert stored(admin_app)[("active", "create")] == body
    assert deliver_setting(admin_app)["active"] is False
    listed = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The active create request is saved" in listed
    assert "changed from the generated request" in listed


@sqlite_only
def test_an_unchanged_form_saves_the_request_unchanged(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    before = stored(admin_app)

    answer = browser.post(
        f"/admin/integrations/{iid}/requests/cleared/note",
        data=edit_form(browser, iid, "cleared", "note"),
        headers=REFERER,
    )

    assert answer.status_code == 302
    assert stored(admin_app) == before
    listed = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "changed from the generated request" not in listed


@sqlite_only
@pytest.mark.parametrize(
    ("body", "line", "line_text", "words"),
    [
        pytest.param(BAD_NOTE, 4, '  "publish": ##PUBLISH##,', "not valid JSON", id="json"),
        pytest.param(
            '{\n  "description": "{{ alert.title | }}"\n}',
            2,
            "{{ alert.title | }}",
            "expected",
            id="jinja",
        ),
        pytest.param('{\n  "a": 1,\n  "a": 2\n}', 3, '"a": 2', "appears twice", id="duplicate-key"),
    ],
)
def test_a_bad_payload_is_refused_with_its_line_shown_and_nothing_saved(
    admin_app: Flask, browser: FlaskClient, body: str, line: int, line_text: str, words: str
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    before = stored(admin_app)

    answer = browser.post(
        f"/admin/integrations/{iid}/requests/cleared/note",
        data=edit_form(browser, iid, "cleared", "note", body=body.replace("\n", "\r\n")),
        headers=REFERER,
    )

    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Not saved: cleared note request: " in page
    assert words in html.unescape(page)
    assert f"Line {line} of the payload template:" in page
    offending = re.search(r'<pre class="offending"><code>(.*?)</code></pre>', page, re.S)
    assert offending and line_text in html.unescape(offending.group(1))
    assert textarea(page, "body") == body  # what the admin wrote stays in the editor
    assert stored(admin_app) == before


@sqlite_only
@pytest.mark.parametrize("api_flavour", ["soap"])
def test_a_bad_xml_payload_is_refused_with_its_line_shown(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    before = stored(admin_app)
    form = edit_form(browser, iid, "cleared", "note", format="xml")
    good = textarea(
        browser.get(f"/admin/integrations/{iid}/requests/cleared/note").get_data(as_text=True),
        "body",
    )
    lines = good.splitlines()
    # An element left open on the envelope's first line of the body: XML finds out later.
    broken_line = next(i for i, line in enumerate(lines) if "<soap:Body>" in line)
    lines[broken_line] = lines[broken_line].replace("<soap:Body>", "<soap:Body><open>")
    bad = "\n".join(lines) + "\n"

    answer = browser.post(
        f"/admin/integrations/{iid}/requests/cleared/note",
        data=form | {"body": bad},
        headers=REFERER,
    )

    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 400
    assert "not valid XML" in page
    found = re.search(r"Line (\d+) of the payload template:", page)
    assert found, page
    offending = re.search(r'<pre class="offending"><code>(.*?)</code></pre>', page, re.S)
    assert offending and offending.group(1) == bad.splitlines()[int(found[1]) - 1]
    assert stored(admin_app) == before


@sqlite_only
def test_preview_renders_the_unsaved_request_for_a_stored_alert_secrets_redacted(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    iid = integration_id(admin_app)
    hooked = admin_app.test_client().post(
        "/hooks/generic",
        json={
            "id": "disk-7",
            "status": "active",
            "severity": "critical",
            "title": "Disk full on srv07",
        },
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert hooked.status_code == 202
    alert_id = hooked.get_json()["accepted"][0]["alert_id"]
    sign_in(browser)
    before = stored(admin_app)
    body = default_body("active", "create").replace("##TITLE##", "[Preview] ##TITLE##")
    form = edit_form(
        browser,
        iid,
        "active",
        "create",
        body=body,
        headers="X-Tracking: ##INTEGRATIONCODE##",
        alert_id=str(alert_id),
    )

    page = browser.post(
        f"/admin/integrations/{iid}/requests/active/create",
        data=form | {"op": "preview"},
        headers=REFERER,
    ).get_data(as_text=True)
    fragment = browser.post(
        f"/admin/integrations/{iid}/requests/active/create/preview", data=form, headers=REFERER
    )

    for shown in (page, fragment.get_data(as_text=True)):
        text = html.unescape(shown)
        assert f"stored alert {alert_id} (disk-7)" in text
        assert "[Preview] Disk full on srv07" in text
        # The token renders blank: no template ever sees the tracking identifier.
        assert re.search(r"X-Tracking:[ \t]*$", text, re.MULTILINE), text
        assert api_user.integration_code not in text
        assert api_user.secret not in text
    assert fragment.status_code == 200
    assert "<html" not in fragment.get_data(as_text=True)
    assert textarea(page, "body") == body
    assert stored(admin_app) == before


@sqlite_only
def test_preview_of_a_broken_or_unknown_alert_says_why_with_the_line(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    form = edit_form(browser, iid, "cleared", "note", body=BAD_NOTE)

    broken = browser.post(
        f"/admin/integrations/{iid}/requests/cleared/note/preview", data=form, headers=REFERER
    )
    unknown = browser.post(
        f"/admin/integrations/{iid}/requests/cleared/note/preview",
        data=edit_form(browser, iid, "cleared", "note", alert_id="999"),
        headers=REFERER,
    )

    assert broken.status_code == 422
    text = html.unescape(broken.get_data(as_text=True))
    assert "Cannot preview: cleared note request: line 4:" in text
    assert '  "publish": ##PUBLISH##,' in text
    assert unknown.status_code == 422
    assert "has no alert 999" in unknown.get_data(as_text=True)


@sqlite_only
def test_generate_shows_the_difference_and_keeps_changes_unless_replacing_is_confirmed(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    edited = default_body("acknowledged", "note").replace("##NOTETEXT##", "Ack: ##NOTETEXT##")
    browser.post(
        f"/admin/integrations/{iid}/requests/acknowledged/note",
        data=edit_form(browser, iid, "acknowledged", "note", body=edited),
        headers=REFERER,
    )
    assert stored(admin_app)[("acknowledged", "note")] == edited
    listed = browser.get(f"/admin/integrations/{iid}/requests").get_data(as_text=True)
    generate = f"/admin/integrations/{iid}/requests/generate"

    asked = browser.post(generate, data={"csrf_token": csrf_of(listed)}, headers=REFERER)

    page = asked.get_data(as_text=True)
    assert asked.status_code == 200
    assert "1 request differs" in page
    assert "Replace my changes" in page and "Keep my changes" in page
    assert "--- your acknowledged note request" in html.unescape(page)
    assert '<span class="del">-  &#34;description&#34;: &#34;Ack: ##NOTETEXT##&#34;,</span>' in page
    assert '<span class="add">+  &#34;description&#34;: &#34;##NOTETEXT##&#34;,</span>' in page
    assert stored(admin_app)[("acknowledged", "note")] == edited

    kept = browser.post(
        generate, data={"csrf_token": csrf_of(page), "choice": "keep"}, headers=REFERER
    )
    assert kept.status_code == 302
    assert "Your changes are kept" in browser.get(kept.headers["Location"]).get_data(as_text=True)
    assert stored(admin_app)[("acknowledged", "note")] == edited

    replaced = browser.post(
        generate, data={"csrf_token": csrf_of(page), "choice": "replace"}, headers=REFERER
    )
    assert replaced.status_code == 302
    assert stored(admin_app) == {
        (s.status.value, s.action.value): s.body for s in generate_requests(REST_PROFILE)
    }

    again = browser.post(generate, data={"csrf_token": csrf_of(page)}, headers=REFERER)
    assert again.status_code == 302  # nothing customized: generated without asking
    assert "Delivery options generated" in browser.get(again.headers["Location"]).get_data(
        as_text=True
    )


@sqlite_only
def test_the_switches_are_saved(admin_app: Flask, browser: FlaskClient) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    listed = browser.get(f"/admin/integrations/{iid}/requests").get_data(as_text=True)

    answer = browser.post(
        f"/admin/integrations/{iid}/requests/switches",
        data={
            "csrf_token": csrf_of(listed),
            "deliver_active": "on",
            "deliver_cleared": "on",
            "same_for_every_status": "on",
        },
        headers=REFERER,
    )

    assert answer.status_code == 302
    assert deliver_setting(admin_app) == {
        "active": True,
        "acknowledged": False,
        "escalated": False,
        "cleared": True,
    }
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert page.count("<td>off</td>") == 4  # acknowledged and escalated: update and note
    assert "Active's note request serves every status" in html.unescape(page)


@sqlite_only
def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(
    admin_app: Flask, browser: FlaskClient
) -> None:
    iid = integration_id(admin_app)
    sign_in(browser)
    before, settings = stored(admin_app), deliver_setting(admin_app)
    form = edit_form(browser, iid, "cleared", "note", body="{}")
    del form["csrf_token"]
    base = f"/admin/integrations/{iid}/requests"
    for path, data in [
        (f"{base}/cleared/note", form),
        (f"{base}/cleared/note", form | {"op": "preview"}),
        (f"{base}/cleared/note/preview", form),
        (f"{base}/generate", {"choice": "replace"}),
        (f"{base}/switches", {}),
    ]:
        answer = browser.post(path, data=data, headers=REFERER)
        assert answer.status_code == 400, path
        assert "CSRF check failed" in answer.get_data(as_text=True)
    assert stored(admin_app) == before
    assert deliver_setting(admin_app) == settings


@sqlite_only
@pytest.mark.parametrize("path", ["cleared/create", "gone/note", "active/delete"])
def test_a_request_no_integration_has_is_a_404_page(
    admin_app: Flask, browser: FlaskClient, path: str
) -> None:
    sign_in(browser)
    answer = browser.get(f"/admin/integrations/{integration_id(admin_app)}/requests/{path}")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
