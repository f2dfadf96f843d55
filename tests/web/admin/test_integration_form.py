"""The integration setup form through a browser-like client, against the sandbox over HTTP.

Check connection runs on the form's values before anything is saved, and says each failure in
words; saving goes through the JSON API's functions (the same refusals, beside their fields);
saved secrets never come back into a page; integrations are switched off and on with the
backfill offered first.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from adapters.sandbox import ApiUser, SandboxServer
from connector.persistence.models import DeliveryRequest, GovernorState, Integration
from tests import canaries
from tests.conftest import HOOK_TOKEN
from tests.web.admin.conftest import csrf_of, sign_in

REFERER = {"Referer": "http://localhost/admin/"}
WRONG_SECRET = canaries.WRONG_AUTOTASK_SECRET
WRONG_CODE = canaries.WRONG_INTEGRATION_CODE

#: The refusals and checks are the same on either database: the page tests run on SQLite.
pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.with_integration,
]


def new_form(server: SandboxServer, user: ApiUser, **changes: str) -> dict[str, str]:
    """The new-integration form filled in for the sandbox's API user."""
    form = {
        "name": "Contoso PSA",
        "username": user.username,
        "secret": user.secret,
        "integration_code": user.integration_code,
        "zone_lookup_url": server.rest_url,
        "allowed_zone_hosts": "127.0.0.1",
        "api_flavour": "rest",
        "due_days": "2",
    }
    form.update(changes)
    return form


def submit(browser: FlaskClient, path: str, form: dict[str, str], action: str) -> Any:
    """Send the form on the page at `path` with the button `action` pressed."""
    page = browser.get(path).get_data(as_text=True)
    return browser.post(
        path, data={**form, "csrf_token": csrf_of(page), "action": action}, headers=REFERER
    )


def no_secrets(page: str, user: ApiUser, *also: str) -> None:
    for secret in (user.secret, user.integration_code, *also):
        assert secret not in page


def integrations(app: Flask) -> dict[str, Integration]:
    with app.extensions["connector"].transaction() as session:
        return {row.name: row for row in session.scalars(select(Integration))}


def default_id(app: Flask) -> int:
    return integrations(app)["default"].id


def deny(server: SandboxServer, plan: dict[str, list[str]]) -> None:
    response = requests.post(f"{server.url}_sandbox/permissions", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def sealed(page: str) -> dict[str, str]:
    """The sealed values the page carries to the next submit."""
    return dict(re.findall(r'name="(\w+_sealed)" value="([^"]+)"', page))


# -- a new integration -------------------------------------------------------------------------


def test_a_new_integration_is_checked_then_created_with_settings_from_autotasks_lists(
    admin_app: Flask,
    browser: FlaskClient,
    api_user: ApiUser,
    sandbox_server: SandboxServer,
) -> None:
    sign_in(browser)
    overview = browser.get("/admin/integrations").get_data(as_text=True)
    assert 'href="/admin/integrations/new"' in overview
    empty = browser.get("/admin/integrations/new").get_data(as_text=True)
    assert "check the connection first" in empty
    assert '<select id="queue_id"' not in empty  # no lists before the API user is known

    checked = submit(
        browser, "/admin/integrations/new", new_form(sandbox_server, api_user), "check"
    )
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200
    assert "every check passed" in page
    no_secrets(page, api_user)
    # Autotask's own lists, read with the values not saved yet: picked by name.
    assert re.search(r'<select id="queue_id" name="queue_id"', page)
    assert re.search(r'<select id="sub_issue_type"[^>]*>.*<optgroup label=', page, re.S)
    assert "Northwind Traders" in page
    carried = sealed(page)
    assert set(carried) == {"secret_sealed", "integration_code_sealed"}
    assert integrations(admin_app).keys() == {"default"}  # checked, nothing saved

    queue = re.search(r'<select id="queue_id".*?<option value="(\d+)"', page, re.S)
    assert queue is not None
    form = new_form(
        sandbox_server, api_user, secret="", integration_code="", queue_id=queue.group(1)
    )
    form.update(carried, default_company_id="29683416")
    created = browser.post(
        "/admin/integrations/new",
        data={**form, "csrf_token": csrf_of(page), "action": "save"},
        headers=REFERER,
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    stored = integrations(admin_app)["Contoso PSA"]
    assert created.headers["Location"] == f"/admin/integrations/{stored.id}/edit"
    box = admin_app.extensions["connector"].secret_box()
    assert box.decrypt(stored.secret_encrypted) == api_user.secret  # the sealed one, kept
    assert box.decrypt(stored.integration_code_encrypted) == api_user.integration_code
    assert stored.settings["queue_id"] == int(queue.group(1))
    assert stored.settings["default_company_id"] == 29683416
    assert stored.settings["due_days"] == 2.0
    assert stored.zone_lookup_url == sandbox_server.rest_url
    # As the API's create: the delivery requests are generated with it.
    with admin_app.extensions["connector"].transaction() as session:
        requests_made = session.scalar(
            select(func.count())
            .select_from(DeliveryRequest)
            .where(DeliveryRequest.integration_id == stored.id)
        )
    assert requests_made

    edit = browser.get(created.headers["Location"]).get_data(as_text=True)
    assert "delivery options generated for REST" in edit
    assert "Generate delivery options" in edit
    no_secrets(edit, api_user)


@pytest.mark.parametrize(
    ("changes", "deny_plan", "check", "says"),
    [
        (
            {"secret": WRONG_SECRET},
            None,
            "Username, secret and tracking identifier",
            "refused its secret (HTTP 401)",
        ),
        (
            {"username": "nobody@sandbox.test"},
            None,
            "Zone lookup",
            "does not know the API user 'nobody@sandbox.test'",
        ),
        (
            {"integration_code": WRONG_CODE},
            None,
            "Username, secret and tracking identifier",
            "tracking identifier",
        ),
        (
            {},
            {"Tickets": ["create"]},
            "Create tickets",
            "does not allow it to create tickets",
        ),
        ({}, {"Companies": ["query"]}, "Read companies", "does not allow it to read companies"),
        ({}, {"TicketNotes": ["create"]}, "Add ticket notes", "does not allow it to add notes"),
    ],
    ids=["wrong-secret", "unknown-user", "wrong-tracking-id", "tickets", "companies", "notes"],
)
def test_check_before_saving_says_each_failure_in_words(
    admin_app: Flask,
    browser: FlaskClient,
    api_user: ApiUser,
    sandbox_server: SandboxServer,
    changes: dict[str, str],
    deny_plan: dict[str, list[str]] | None,
    check: str,
    says: str,
) -> None:
    if deny_plan:
        deny(sandbox_server, deny_plan)
    sign_in(browser)
    form = new_form(sandbox_server, api_user, **changes)
    answer = submit(browser, "/admin/integrations/new", form, "check")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Autotask does not accept this integration yet" in page
    failed = re.search(
        rf'<li class="failed">\s*<strong>{re.escape(check)}</strong>:\s*failed\s*<br><span>([^<]*)',
        page,
    )
    assert failed, page
    assert says in failed.group(1).replace("&#39;", "'")
    no_secrets(page, api_user, WRONG_SECRET, WRONG_CODE)
    assert integrations(admin_app).keys() == {"default"}


def test_refusals_are_shown_beside_their_fields_and_nothing_is_saved(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser, sandbox_server: SandboxServer
) -> None:
    sign_in(browser)
    form = new_form(
        sandbox_server,
        api_user,
        name="  ",
        zone_lookup_url="ftp://files.example.net/",
        due_days="soon",
        integration_code="",
    )
    answer = submit(browser, "/admin/integrations/new", form, "save")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Not saved: see the fields marked below" in page
    due = re.search(r'id="due_days-error">([^<]*)', page)
    assert due and "must be a number of days" in due.group(1)
    # The form's own check first; then the API's, in its order: the fields, the settings, the
    # address; each refusal beside the field it names.
    rounds = [
        ({"due_days": "400"}, {"name": "must not be blank", "integration_code": "Missing data"}),
        (
            {"due_days": "400", "name": "Contoso", "integration_code": WRONG_CODE},
            {"due_days": "less than or equal to 365"},
        ),
        (
            {"due_days": "1", "name": "Contoso", "integration_code": WRONG_CODE},
            {"zone_lookup_url": "must be an absolute https URL"},
        ),
    ]
    for changes, expected in rounds:
        answer = submit(browser, "/admin/integrations/new", {**form, **changes}, "save")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400
        shown = dict(re.findall(r'id="(\w+)-error">([^<]*)', page))
        assert shown.keys() == expected.keys(), shown
        for field, words in expected.items():
            assert words.lower() in shown[field].lower(), (field, shown[field])
    assert 'aria-invalid="true"' in page
    no_secrets(page, api_user, WRONG_CODE)

    taken = submit(
        browser,
        "/admin/integrations/new",
        new_form(sandbox_server, api_user, name="default"),
        "save",
    )
    assert taken.status_code == 400
    assert "an integration named &#39;default&#39; exists already" in taken.get_data(as_text=True)
    assert integrations(admin_app).keys() == {"default"}


# -- editing ---------------------------------------------------------------------------------


def test_editing_keeps_the_saved_secrets_when_left_blank_and_never_shows_them(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    integration_id = default_id(admin_app)
    path = f"/admin/integrations/{integration_id}/edit"
    sign_in(browser)
    page = browser.get(path).get_data(as_text=True)
    no_secrets(page, api_user)
    assert "leave this blank to keep it" in page
    assert "••••" + api_user.integration_code[-4:] in page  # masked, as the overview shows it
    assert re.search(r'<select id="queue_id"', page)
    assert re.search(r'<option value="29682833" selected>', page)  # the seeded queue

    values = dict(re.findall(r'<input id="(\w+)" name="\1" type="[a-z]+" value="([^"]*)"', page))
    form = {
        **values,
        "name": "Renamed",
        "secret": "",
        "integration_code": "",
        "api_flavour": "rest",
        "queue_id": "29682833",
        "default_company_id": "29683414",
    }
    saved = submit(browser, path, form, "save")
    assert saved.status_code == 302, saved.get_data(as_text=True)
    stored = integrations(admin_app)["Renamed"]
    box = admin_app.extensions["connector"].secret_box()
    assert box.decrypt(stored.secret_encrypted) == api_user.secret
    assert box.decrypt(stored.integration_code_encrypted) == api_user.integration_code
    after = browser.get(path).get_data(as_text=True)
    assert "Saved (name); the next alert uses it." in after
    no_secrets(after, api_user)


def test_checking_new_values_of_a_saved_integration_leaves_its_own_alone(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    """A wrong secret typed and checked before saving does not pause the saved integration."""
    integration_id = default_id(admin_app)
    path = f"/admin/integrations/{integration_id}/edit"
    sign_in(browser)
    page = browser.get(path).get_data(as_text=True)
    values = dict(re.findall(r'<input id="(\w+)" name="\1" type="[a-z]+" value="([^"]*)"', page))
    form = {**values, "secret": WRONG_SECRET, "integration_code": "", "api_flavour": "rest"}
    checked = submit(browser, path, form, "check").get_data(as_text=True)
    assert "refused its secret (HTTP 401)" in checked
    no_secrets(checked, api_user, WRONG_SECRET)
    assert "Kept from what you typed before" in checked
    with admin_app.extensions["connector"].transaction() as session:
        state = session.get(GovernorState, integration_id)
        assert state is None or state.paused_until is None
    stored = integrations(admin_app)["default"]
    box = admin_app.extensions["connector"].secret_box()
    assert box.decrypt(stored.secret_encrypted) == api_user.secret


def test_generate_delivery_options_is_offered_after_creating(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = default_id(admin_app)
    sign_in(browser)
    page = browser.get(f"/admin/integrations/{integration_id}/edit").get_data(as_text=True)
    action = f"/admin/integrations/{integration_id}/requests/generate"
    assert f'action="{action}"' in page
    with admin_app.extensions["connector"].transaction() as session:
        session.query(DeliveryRequest).filter_by(integration_id=integration_id).delete()
    answer = browser.post(action, data={"csrf_token": csrf_of(page)}, headers=REFERER)
    assert answer.status_code == 302
    with admin_app.extensions["connector"].transaction() as session:
        assert session.query(DeliveryRequest).filter_by(integration_id=integration_id).count()
    assert "Delivery options generated from the REST templates" in browser.get(
        answer.headers["Location"]
    ).get_data(as_text=True)


# -- active or inactive ------------------------------------------------------------------------


def test_deactivating_and_activating_through_the_pages(
    admin_app: Flask, browser: FlaskClient
) -> None:
    integration_id = default_id(admin_app)
    sign_in(browser)
    overview = browser.get("/admin/integrations").get_data(as_text=True)
    assert "default: active, change" in overview
    page = browser.get(f"/admin/integrations/{integration_id}/activation").get_data(as_text=True)
    answer = browser.post(
        f"/admin/integrations/{integration_id}/deactivate",
        data={"csrf_token": csrf_of(page)},
        headers=REFERER,
    )
    assert answer.status_code == 302
    assert integrations(admin_app)["default"].active is False

    hook = browser.post(
        "/hooks/generic",
        json={"id": "kept", "status": "active", "severity": "error", "title": "Kept"},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert hook.status_code == 202
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "is inactive: its alerts are kept" in page
    assert re.search(r'id="held-recent">1<', page)
    assert re.search(r'id="tickets-to-create">1<', page)
    assert "default: inactive, change" in browser.get("/admin/integrations").get_data(as_text=True)

    answer = browser.post(
        f"/admin/integrations/{integration_id}/activate",
        data={"csrf_token": csrf_of(page), "backfill": "no"},
        headers=REFERER,
    )
    assert answer.status_code == 302
    assert integrations(admin_app)["default"].active is True
    assert "1 held deliveries were skipped" in browser.get(answer.headers["Location"]).get_data(
        as_text=True
    )


def test_the_forms_need_their_csrf_token(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = default_id(admin_app)
    sign_in(browser)
    for path in (
        "/admin/integrations/new",
        f"/admin/integrations/{integration_id}/edit",
        f"/admin/integrations/{integration_id}/deactivate",
        f"/admin/integrations/{integration_id}/activate",
        f"/admin/integrations/{integration_id}/requests/generate",
    ):
        answer = browser.post(path, data={"action": "save", "backfill": "yes"}, headers=REFERER)
        assert answer.status_code == 400, path
    assert integrations(admin_app)["default"].active is True


def test_a_saved_value_autotask_does_not_list_stays_chosen(
    admin_app: Flask, browser: FlaskClient
) -> None:
    """Saving the form as shown never swaps a value Autotask no longer lists for another."""
    integration_id = default_id(admin_app)
    with admin_app.extensions["connector"].transaction() as session:
        integration = session.get(Integration, integration_id)
        assert integration is not None
        integration.settings = {**integration.settings, "queue_id": 4711}
    sign_in(browser)
    page = browser.get(f"/admin/integrations/{integration_id}/edit").get_data(as_text=True)
    assert re.search(r'<option value="4711" selected>#4711 \(not in Autotask', page)


def test_what_an_acknowledgement_does_is_picked_in_the_form(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    integration_id = default_id(admin_app)
    path = f"/admin/integrations/{integration_id}/edit"
    sign_in(browser)
    page = browser.get(path).get_data(as_text=True)
    # Unset: the API's default, each flavour's said.
    assert re.search(r'<option value="" selected>The API\'s default \(REST: set the status', page)
    assert "SOAP: add a note only" in page
    values = dict(re.findall(r'<input id="(\w+)" name="\1" type="[a-z]+" value="([^"]*)"', page))
    form = {**values, "secret": "", "integration_code": "", "api_flavour": "rest"}

    saved = submit(browser, path, {**form, "status_on_acknowledge": "false"}, "save")
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert integrations(admin_app)["default"].settings["status_on_acknowledge"] is False
    after = browser.get(path).get_data(as_text=True)
    assert '<option value="false" selected>Add a note only' in after

    submit(browser, path, {**form, "status_on_acknowledge": ""}, "save")
    assert integrations(admin_app)["default"].settings["status_on_acknowledge"] is None

    refused = submit(browser, path, {**form, "status_on_acknowledge": "sometimes"}, "save")
    assert "must be picked from the list" in refused.get_data(as_text=True)
    assert integrations(admin_app)["default"].settings["status_on_acknowledge"] is None
