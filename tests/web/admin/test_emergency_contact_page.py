"""The emergency contact page: the address saved as a setting, and a test mail through a real
local SMTP server (aiosmtpd); every failure in words. Also the JSON API's side of both."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.persistence.models import Integration
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN
from tests.e2e.harness import free_port
from tests.smtp_inbox import Inbox, smtp_inbox
from tests.web.admin.conftest import csrf_of, sign_in

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REFERER = {"Referer": "http://localhost/admin/"}
ADDRESS = "on-call@example.net"
LOGIN = ("mailer", canaries.SMTP_PASSWORD)


@pytest.fixture
def inbox(request: pytest.FixtureRequest) -> Iterator[Inbox]:
    """The SMTP server the connector mails; `login` (indirect parameter) makes it want one."""
    with smtp_inbox(login=LOGIN if getattr(request, "param", "") == "login" else None) as found:
        yield found


@pytest.fixture
def smtp_settings(inbox: Inbox, request: pytest.FixtureRequest) -> dict[str, object]:
    """The connector's smtp settings: the inbox's, changed by an indirect parameter (no host:
    none at all; port "nobody": a port nobody listens on)."""
    changes = dict(getattr(request, "param", {}))
    if changes.get("SMTP_HOST") == "":
        return {}
    if changes.get("SMTP_PORT") == "nobody":
        changes["SMTP_PORT"] = free_port()
    return inbox.settings() | changes


@pytest.fixture
def admin_settings(
    database_url: str,
    secret_key: str,
    integration_config: dict[str, object],
    smtp_settings: dict[str, object],
) -> dict[str, object]:
    """The admin app's settings: the sandbox's integration, the API token, the smtp settings."""
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEYS": [secret_key],
        "WORKER_ENABLED": False,
        "HOOK_TOKEN": HOOK_TOKEN,
        "API_TOKEN": API_TOKEN,
        "INTEGRATION": integration_config,
        **smtp_settings,
    }


def integration_id_of(app: Flask) -> int:
    with app.extensions["connector"].transaction() as session:
        return int(session.scalars(select(Integration.id)).one())


def stored_contact(app: Flask) -> Any:
    with app.extensions["connector"].transaction() as session:
        return session.scalars(select(Integration)).one().settings.get("emergency_contact")


def contact_page(browser: FlaskClient, integration_id: int) -> str:
    answer = browser.get(f"/admin/integrations/{integration_id}/contact")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def save(browser: FlaskClient, integration_id: int, address: str) -> Any:
    csrf = csrf_of(contact_page(browser, integration_id))
    return browser.post(
        f"/admin/integrations/{integration_id}/contact",
        data={"csrf_token": csrf, "address": address},
        headers=REFERER,
    )


def send_test_mail(browser: FlaskClient, integration_id: int) -> Any:
    csrf = csrf_of(contact_page(browser, integration_id))
    return browser.post(
        f"/admin/integrations/{integration_id}/contact/test-mail",
        data={"csrf_token": csrf},
        headers=REFERER,
    )


@sqlite_only
def test_an_address_is_saved_shown_and_removed(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    assert "No address is saved yet" in contact_page(browser, integration_id)

    answer = save(browser, integration_id, f"  {ADDRESS} ")

    assert answer.status_code == 303
    assert stored_contact(admin_app) == ADDRESS
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"Emergency contact saved: {ADDRESS}." in page
    assert f'value="{ADDRESS}"' in page
    assert "Send test mail" in page

    assert save(browser, integration_id, "").status_code == 303
    assert stored_contact(admin_app) is None
    assert "No address is saved yet" in contact_page(browser, integration_id)


@pytest.mark.parametrize(
    "address", ["not-an-address", "two@example.net, three@example.net", "x@y\r\nBcc: z@w"]
)
def test_what_is_not_an_address_is_refused_in_words(
    admin_app: Flask, browser: FlaskClient, address: str
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    answer = save(browser, integration_id, address)

    assert answer.status_code == 400
    assert (
        "Not saved: invalid emergency contact: settings.emergency_contact: must be an e-mail"
        in (answer.get_data(as_text=True))
    )
    assert stored_contact(admin_app) is None


def test_the_test_mail_arrives_naming_the_integration(
    admin_app: Flask, browser: FlaskClient, inbox: Inbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)

    answer = send_test_mail(browser, integration_id)

    assert answer.status_code == 303
    (mail,) = inbox.wait_for(1)
    assert mail.rcpt_tos == [ADDRESS]
    assert mail.message["To"] == ADDRESS
    assert mail.message["From"] == "connector@example.net"
    assert mail.message["Subject"] == (
        "Test mail from Autotask Alert Connector: integration default"
    )
    assert "for its integration 'default'" in mail.body
    assert f"{ADDRESS} is this integration's emergency contact" in mail.body
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"Test mail sent to {ADDRESS}: check that it arrived." in page


@sqlite_only
@pytest.mark.parametrize("inbox", ["login"], indirect=True)
def test_a_server_that_wants_a_login_gets_it_and_the_password_is_never_shown(
    admin_app: Flask,
    browser: FlaskClient,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)

    assert send_test_mail(browser, integration_id).status_code == 303
    assert len(inbox.wait_for(1)) == 1
    assert LOGIN[1] not in caplog.text
    assert LOGIN[1] not in contact_page(browser, integration_id)


@sqlite_only
@pytest.mark.parametrize("inbox", ["login"], indirect=True)
@pytest.mark.parametrize("smtp_settings", [{"SMTP_PASSWORD": "wrong-pw-canary"}], indirect=True)
def test_a_refused_login_is_said_in_words(
    admin_app: Flask, browser: FlaskClient, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)

    answer = send_test_mail(browser, integration_id)

    assert answer.status_code == 502
    page = answer.get_data(as_text=True)
    assert f"Test mail not sent: the mail server 127.0.0.1:{inbox.port} refused the login" in page
    assert "check smtp username and smtp password" in page
    assert "wrong-pw-canary" not in page and "wrong-pw-canary" not in caplog.text
    assert inbox.mails == []


@sqlite_only
@pytest.mark.parametrize("smtp_settings", [{"SMTP_PORT": "nobody"}], indirect=True)
def test_nobody_listening_is_said_in_words(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)

    answer = send_test_mail(browser, integration_id)

    assert answer.status_code == 502
    assert "refused the connection: no SMTP server listens there" in answer.get_data(as_text=True)


@sqlite_only
@pytest.mark.parametrize("smtp_settings", [{"SMTP_HOST": ""}], indirect=True)
def test_no_mail_server_configured_is_said_in_words(admin_app: Flask, browser: FlaskClient) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)
    assert "No mail server is configured" in contact_page(browser, integration_id)

    answer = send_test_mail(browser, integration_id)

    assert answer.status_code == 409
    assert "Test mail not sent: no mail server is configured: set smtp host and smtp from" in (
        answer.get_data(as_text=True)
    )


@sqlite_only
def test_a_test_mail_without_an_address_says_so(
    admin_app: Flask, browser: FlaskClient, inbox: Inbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)

    answer = send_test_mail(browser, integration_id)

    assert answer.status_code == 409
    assert "integration &#39;default&#39; has no emergency contact" in answer.get_data(as_text=True)
    assert inbox.mails == []


@sqlite_only
def test_posts_without_their_csrf_token_are_refused(
    admin_app: Flask, browser: FlaskClient, inbox: Inbox
) -> None:
    integration_id = integration_id_of(admin_app)
    sign_in(browser)
    save(browser, integration_id, ADDRESS)

    for path, data in [("contact", {"address": "evil@example.net"}), ("contact/test-mail", {})]:
        answer = browser.post(
            f"/admin/integrations/{integration_id}/{path}", data=data, headers=REFERER
        )
        assert answer.status_code == 400
        assert "CSRF check failed" in answer.get_data(as_text=True)
    assert stored_contact(admin_app) == ADDRESS
    assert inbox.mails == []


# -- the JSON API ------------------------------------------------------------------------------


@sqlite_only
def test_the_api_sets_the_address_and_sends_the_test_mail(admin_app: Flask, inbox: Inbox) -> None:
    client = admin_app.test_client()
    integration_id = integration_id_of(admin_app)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    refused = client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"settings": {"emergency_contact": "nope"}},
        headers=auth,
    )
    assert refused.status_code == 400
    assert (
        "settings.emergency_contact: must be an e-mail address"
        in (refused.get_json()["error"]["message"])
    )
    saved = client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"settings": {"emergency_contact": ADDRESS}},
        headers=auth,
    )
    assert saved.status_code == 200, saved.get_json()

    answer = client.post(f"/api/v1/integrations/{integration_id}/test-mail", headers=auth)

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"ok": True, "integration_id": integration_id, "sent_to": ADDRESS}
    (mail,) = inbox.wait_for(1)
    assert mail.rcpt_tos == [ADDRESS]
    assert (
        client.post(
            f"/api/v1/integrations/{integration_id}/test-mail", json={"x": 1}, headers=auth
        ).status_code
        == 400
    )


@sqlite_only
@pytest.mark.parametrize("smtp_settings", [{"SMTP_HOST": ""}], indirect=True)
def test_the_api_says_when_no_mail_server_is_configured(admin_app: Flask) -> None:
    client = admin_app.test_client()
    integration_id = integration_id_of(admin_app)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"settings": {"emergency_contact": ADDRESS}},
        headers=auth,
    )

    answer = client.post(f"/api/v1/integrations/{integration_id}/test-mail", headers=auth)

    assert answer.status_code == 409
    assert "no mail server is configured" in answer.get_json()["error"]["message"]
