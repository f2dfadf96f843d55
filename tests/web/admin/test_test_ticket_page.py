"""The test ticket page through a browser-like client, against the real sandbox over HTTP."""

from __future__ import annotations

import base64
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser, Sandbox
from connector.domain import REDACTED
from connector.persistence.models import AdminUser, Integration
from connector.pipeline.testdelivery import TEST_TITLE
from connector.web.admin.test_ticket import SENDING
from tests.web.admin.conftest import USERNAME, csrf_of, sign_in

pytestmark = pytest.mark.with_integration

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH_APIS = pytest.mark.parametrize("api_flavour", ["rest", "soap"])
REFERER = {"Referer": "http://localhost/admin/"}


@pytest.fixture
def admin_settings(
    admin_settings: dict[str, object], integration_config: dict[str, object]
) -> dict[str, object]:
    """The admin app's settings (with the sandbox's integration: named, so that tests can
    parametrize `api_flavour`), and:"""
    return {
        **admin_settings,
        "CATALOG_CACHE_SECONDS": 0.0,
    }


def integration_id_of(app: Flask) -> int:
    with app.extensions["connector"].transaction() as session:
        return int(session.scalars(select(Integration.id)).one())


def form_page(browser: FlaskClient, integration_id: int, query: str = "") -> str:
    answer = browser.get(f"/admin/integrations/{integration_id}/test-ticket{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data(as_text=True)


def send(
    browser: FlaskClient, integration_id: int, *, csrf: str | None = None, **fields: str
) -> tuple[int, str]:
    """Fill in and send the form as a browser does; the answer's status and page."""
    csrf = csrf or csrf_of(form_page(browser, integration_id))
    answer = browser.post(
        f"/admin/integrations/{integration_id}/test-ticket",
        data={"csrf_token": csrf, **fields},
        headers=REFERER,
    )
    return answer.status_code, answer.get_data(as_text=True)


def set_secret(app: Flask, secret: str) -> None:
    services = app.extensions["connector"]
    with services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        integration.secret_encrypted = services.secret_box().encrypt(secret)


def assert_no_credentials(page: str, user: ApiUser) -> None:
    """Neither the secret, the tracking identifier nor a Basic token made of them is shown."""
    basic = base64.b64encode(f"{user.username}:{user.secret}".encode()).decode()
    for canary in (user.secret, user.integration_code, basic, basic[:24]):
        assert canary not in page


def test_the_overview_links_to_the_test_ticket_page(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    page = browser.get("/admin/integrations").get_data(as_text=True)
    assert f'href="/admin/integrations/{integration_id}/test-ticket"' in page
    tabs = browser.get(f"/admin/integrations/{integration_id}/test-ticket").get_data(as_text=True)
    assert f'href="/admin/integrations/{integration_id}/contact">Emergency contact</a>' in tabs
    current = f'href="/admin/integrations/{integration_id}/test-ticket" aria-current="page"'
    assert current in tabs


@sqlite_only
def test_companies_are_picked_by_name_with_search(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    page = form_page(browser, integration_id)
    assert re.search(r'<select id="company_id" name="company_id">', page)
    assert '<option value="29683416">Northwind Traders</option>' in page
    assert '<option value="29683415">Fabrikam Inc</option>' in page
    assert "The default company: Contoso Ltd" in page  # the integration's default, by name
    assert 'data-progress="Sending…"' in page and "progress.js" in page

    narrowed = form_page(browser, integration_id, "?company_search=north")
    assert "Northwind Traders" in narrowed
    assert "Fabrikam Inc" not in narrowed
    assert "The default company: Contoso Ltd" in narrowed

    nothing = form_page(browser, integration_id, "?company_search=no-such-company")
    assert "No company's name contains “no-such-company”" in nothing


@BOTH_APIS
def test_a_test_ticket_is_sent_and_shown_with_its_id_number_and_exchange(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    status, page = send(
        browser,
        integration_id,
        company_id="29683416",
        title='Probe <b>"bold"</b> from the form',
        text="Line one\r\nLine two",
    )

    assert status == 200, page
    (ticket,) = sandbox.tickets_with_notes()
    assert ticket["title"] == 'Probe <b>"bold"</b> from the form'
    assert ticket["companyID"] == 29683416
    assert "Line two" in ticket["description"]
    assert ticket["status"] != 5  # not completed: not asked
    assert f"Autotask made the test ticket {ticket['ticketNumber']}" in page
    assert f"<dt>Ticket id</dt><dd>{ticket['id']}</dd>" in page
    assert f"<dt>Ticket number</dt><dd>{ticket['ticketNumber']}</dd>" in page
    assert "<dt>Completed</dt><dd>no (not asked)</dd>" in page
    assert "Probe &lt;b&gt;&#34;bold&#34;&lt;/b&gt;" in page  # escaped, never markup
    assert "<b>" not in page
    # The request as sent: method and URL, headers with the credentials redacted, the body.
    assert re.search(r"<code>POST http://127\.0\.0\.1:\d+/", page)
    assert '<th scope="col">Header</th>' in page
    assert REDACTED.replace("<", "&lt;").replace(">", "&gt;") in page
    assert "HTTP status <strong>200</strong>" in page
    assert_no_credentials(page, api_user)


@BOTH_APIS
@sqlite_only
def test_complete_at_once_leaves_the_sandbox_ticket_completed(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    status, page = send(browser, integration_id, company_id="29683415", complete="on")

    assert status == 200, page
    (ticket,) = sandbox.tickets_with_notes()
    assert ticket["title"] == TEST_TITLE
    assert ticket["status"] == 5
    assert ticket["completedDate"]
    assert "and completed it." in page
    assert "<dt>Completed</dt><dd>yes: Autotask reports status 5</dd>" in page
    assert "The Cleared note and update requests that completed it" in page
    assert_no_credentials(page, api_user)


@BOTH_APIS
@sqlite_only
def test_a_wrong_secret_is_said_in_words_and_companies_become_an_id_field(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox, api_user: ApiUser
) -> None:
    integration_id = integration_id_of(admin_app)
    set_secret(admin_app, "not-the-secret-at-all")
    sign_in(browser)
    # A token from a page that calls no one: the test ticket is the first call to Autotask.
    csrf = csrf_of(browser.get("/admin/integrations").get_data(as_text=True))

    status, page = send(browser, integration_id, csrf=csrf, company_id="29683414")

    assert status == 502
    assert (
        "No test ticket: Autotask refused the API user&#39;s credentials (HTTP 401):"
        " check the username and secret." in page
    )
    assert_no_credentials(page, api_user)
    assert "not-the-secret-at-all" not in page

    # Autotask's companies cannot be read either: the company is asked for by its id.
    page = form_page(browser, integration_id)
    assert "Autotask's companies cannot be read now" in page
    assert '<input id="company_id" name="company_id" inputmode="numeric"' in page

    # The refusal paused the integration's calls: the next test ticket says so, sends nothing.
    status, page = send(browser, integration_id, company_id="29683414")
    assert status == 503
    assert "the connector holds this integration&#39;s calls to Autotask back now" in page
    assert "secret" in page
    assert sandbox.tickets_with_notes() == []
    assert_no_credentials(page, api_user)


@sqlite_only
def test_an_unknown_company_is_said_in_words(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    status, page = send(browser, integration_id, company_id="99999999")

    assert status == 502
    assert "No test ticket: Autotask has no active company 99999999" in page
    assert sandbox.tickets_with_notes() == []


@sqlite_only
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"title": "x" * 256}, "title: Length must be between 1 and 255."),
        ({"title": "tab\there"}, "title: must not contain control characters"),
        ({"text": "bell \x07"}, "text: must not contain control characters"),
        ({"company_id": "Contoso"}, "company_id: Not a valid integer."),
    ],
)
def test_refused_input_names_the_field_and_sends_nothing(
    admin_app: Flask,
    browser: FlaskClient,
    sandbox: Sandbox,
    fields: dict[str, str],
    words: str,
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    status, page = send(browser, integration_id, **fields)

    assert status == 400
    assert f"not sent: {words}" in page
    assert '<form method="post"' in page  # the form again, to correct it
    assert sandbox.tickets_with_notes() == []


@sqlite_only
def test_a_post_without_its_csrf_token_is_refused_and_sends_nothing(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    answer = browser.post(
        f"/admin/integrations/{integration_id}/test-ticket",
        data={"company_id": "29683414"},
        headers=REFERER,
    )

    assert answer.status_code == 400
    assert "CSRF check failed" in answer.get_data(as_text=True)
    assert sandbox.tickets_with_notes() == []


@sqlite_only
def test_an_admin_sends_one_test_ticket_at_a_time(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    with admin_app.extensions["connector"].transaction() as session:
        admin_id = session.scalars(select(AdminUser.id).where(AdminUser.username == USERNAME)).one()

    with SENDING.slot(admin_id) as free:  # as if a first test ticket were on its way
        assert free
        status, page = send(browser, integration_id)
    assert status == 429
    assert "A test ticket of yours is on its way already" in page
    assert sandbox.tickets_with_notes() == []

    status, _ = send(browser, integration_id)  # its answer came: the next one goes
    assert status == 200
    assert len(sandbox.tickets_with_notes()) == 1


@sqlite_only
def test_an_admin_past_the_minutes_test_tickets_is_told_when_to_send_the_next(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    for _ in range(10):
        status, _page = send(browser, integration_id)
        assert status == 200

    status, page = send(browser, integration_id)

    assert status == 429
    assert "at most 10 test deliveries a minute" in page
    assert "send the next in" in page
    assert len(sandbox.tickets_with_notes()) == 10
