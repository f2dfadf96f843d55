"""The webhooks page through a browser-like client: issue (shown once), rotate, revoke, snippets.

Every credential issued here is then used on the real app's POST /hooks/<source>, no mocks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connector.domain import WEBHOOK_TOKEN_PLACEHOLDER
from connector.persistence.models import HookCredential, Integration
from tests.conftest import GENERIC_ALERT, HOOK_TOKEN
from tests.web.admin.conftest import csrf_of, sign_in

pytestmark = pytest.mark.with_integration

REFERER = {"Referer": "http://localhost/admin/"}
#: Every source the connector ships, as the page names them.
SOURCE_NAMES = (
    "LogicMonitor",
    "Datto RMM",
    "Office Protect",
    "Prometheus Alertmanager",
    "Generic JSON",
)


@pytest.fixture
def integration_id(admin_app: Flask) -> int:
    with admin_app.extensions["connector"].transaction() as session:
        return int(session.query(Integration.id).one()[0])


@pytest.fixture
def signed_in(browser: FlaskClient) -> FlaskClient:
    sign_in(browser)
    return browser


def page_of(client: FlaskClient, integration_id: int) -> str:
    answer = client.get(f"/admin/integrations/{integration_id}/webhooks")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def issue(client: FlaskClient, integration_id: int, **fields: str) -> TestResponse:
    """Fill in and send the "Issue a credential" form."""
    page = page_of(client, integration_id)
    data = {"scheme": "bearer", "source": "", "label": "", "username": ""} | fields
    return client.post(
        f"/admin/integrations/{integration_id}/webhooks",
        data={"csrf_token": csrf_of(page), **data},
        headers=REFERER,
    )


def shown(answer: TestResponse, element_id: str) -> str:
    """The value the answer page shows in the element with this id."""
    found = re.search(
        rf'<code id="{element_id}"[^>]*>([^<]+)</code>', answer.get_data(as_text=True)
    )
    assert found, answer.get_data(as_text=True)
    return html.unescape(found.group(1))


def credential_ids(app: Flask) -> dict[int, bool]:
    """Every stored credential's id and whether it is live."""
    with app.extensions["connector"].transaction() as session:
        return {row.id: row.revoked_at is None for row in session.query(HookCredential)}


def post_alert(client: FlaskClient, source: str, headers: dict[str, str]) -> int:
    """POST a generic alert to the real hook; the status it answers."""
    return client.post(f"/hooks/{source}", json=GENERIC_ALERT, headers=headers).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_never_stored_plain_and_authenticates_a_webhook(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    answer = issue(signed_in, integration_id, source="generic", label="Generic prod")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    text = answer.get_data(as_text=True)
    assert "it will not be shown again" in text
    token = shown(answer, "secret")
    assert len(token) >= 40
    assert shown(answer, "authorization") == f"Authorization: Bearer {token}"

    # A second look at the page shows the credential, never its token.
    page = page_of(signed_in, integration_id)
    assert "Generic prod" in page
    assert token not in page
    with admin_app.extensions["connector"].transaction() as session:
        row = session.query(HookCredential).filter_by(label="Generic prod").one()
        assert (row.scheme, row.source, row.revoked_at) == ("bearer", "generic", None)
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        stored = [getattr(row, c.key) for c in HookCredential.__table__.columns]
        assert not any(token in str(value) for value in stored)

    assert post_alert(signed_in, "generic", bearer(token)) == 202
    # Limited to the generic source: another source refuses it.
    assert post_alert(signed_in, "alertmanager", bearer(token)) == 401


def test_the_issued_page_fills_the_snippets_with_the_url_and_the_new_token(
    signed_in: FlaskClient, integration_id: int
) -> None:
    answer = issue(signed_in, integration_id, source="generic", label="curl")
    token = shown(answer, "secret")
    text = html.unescape(answer.get_data(as_text=True))
    assert "curl -X POST 'http://localhost/hooks/generic'" in text
    assert f"-H 'Authorization: Bearer {token}'" in text
    assert WEBHOOK_TOKEN_PLACEHOLDER not in text
    # Only the credential's own source is shown.
    assert "Prometheus Alertmanager" not in text


def test_snippets_for_every_source_name_this_installation(
    browser: FlaskClient, integration_id: int
) -> None:
    installation = "https://alerts.example.net"
    sign_in(browser, path=f"{installation}/admin/login")
    answer = browser.get(f"/admin/integrations/{integration_id}/webhooks", base_url=installation)
    assert answer.status_code == 200
    text = html.unescape(answer.get_data(as_text=True))
    for name in SOURCE_NAMES:
        assert f"<summary>{name}" in text
    for slug in ("logicmonitor", "datto_rmm", "office_protect", "alertmanager", "generic"):
        assert f"https://alerts.example.net/hooks/{slug}" in text
    assert "webhook_configs:" in text  # Alertmanager's receiver
    assert "Custom HTTP Delivery" in text  # where LogicMonitor's body goes
    assert '<pre class="snippet"' in text
    assert "http://localhost/hooks" not in text


def test_the_list_page_shows_no_secret(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    hmac_answer = issue(signed_in, integration_id, scheme="hmac", label="signed")
    basic_answer = issue(
        signed_in, integration_id, scheme="basic", username="datto-rmm", label="basic"
    )
    secrets = [shown(hmac_answer, "secret"), shown(basic_answer, "secret"), HOOK_TOKEN]
    page = page_of(signed_in, integration_id)
    assert "signed" in page and "datto-rmm" in page
    for secret in secrets:
        assert secret not in page
    with admin_app.extensions["connector"].transaction() as session:
        for row in session.query(HookCredential):
            for value in (row.token_sha256, row.password_sha256, row.secret_encrypted):
                assert value is None or value not in page


def test_basic_and_hmac_credentials_as_shown_authenticate_webhooks(
    signed_in: FlaskClient, integration_id: int
) -> None:
    basic = issue(signed_in, integration_id, scheme="basic", username="rmm", label="rmm")
    header = shown(basic, "authorization").removeprefix("Authorization: ")
    password = shown(basic, "secret")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"rmm:{password}"
    # Every source's snippet now carries that header where it had the bearer placeholder.
    filled = html.unescape(basic.get_data(as_text=True))
    assert filled.count(f"Authorization: {header}") >= 5
    assert WEBHOOK_TOKEN_PLACEHOLDER not in filled
    assert post_alert(signed_in, "datto_rmm", {"Authorization": header}) != 401

    signed = issue(signed_in, integration_id, scheme="hmac", source="generic", label="hmac")
    assert "it will not be shown again" in signed.get_data(as_text=True)
    secret = shown(signed, "secret")
    body = json.dumps(GENERIC_ALERT).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Connector-Timestamp": stamp,
        "X-Connector-Signature": f"sha256={mac}",
    }
    assert signed_in.post("/hooks/generic", data=body, headers=headers).status_code == 202

    # The whsec_ form shown for Standard Webhooks senders holds the same key.
    standard = shown(signed, "standard-secret")
    key = base64.b64decode(standard.removeprefix("whsec_"))
    signed_text = f"msg_1.{stamp}.".encode() + body
    mark = base64.b64encode(hmac.new(key, signed_text, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{mark}",
    }
    assert signed_in.post("/hooks/generic", data=body, headers=headers).status_code == 202


def test_a_refused_form_says_why_and_stores_nothing(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    before = credential_ids(admin_app)
    answer = issue(signed_in, integration_id, scheme="basic", label="no user")
    assert answer.status_code == 400
    assert "Not issued: username: required for the basic scheme" in answer.get_data(as_text=True)
    answer = issue(signed_in, integration_id, source="nagios")
    assert answer.status_code == 400
    assert "source: unknown source" in answer.get_data(as_text=True)
    assert credential_ids(admin_app) == before


def test_rotate_keeps_the_old_one_live_unless_asked_to_revoke_it(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    before = credential_ids(admin_app)
    first = shown(issue(signed_in, integration_id, source="alertmanager", label="am"), "secret")
    (first_id,) = set(credential_ids(admin_app)) - set(before)

    rotate = f"/admin/integrations/{integration_id}/webhooks/{first_id}/rotate"
    form = signed_in.get(rotate).get_data(as_text=True)
    assert "stays live until you revoke it" in form
    answer = signed_in.post(rotate, data={"csrf_token": csrf_of(form)}, headers=REFERER)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert "The old credential stays live until you revoke it" in answer.get_data(as_text=True)
    second = shown(answer, "secret")
    assert second != first
    with admin_app.extensions["connector"].transaction() as session:
        rows = session.query(HookCredential).filter_by(label="am").order_by(HookCredential.id)
        assert [(r.scheme, r.source, r.revoked_at) for r in rows] == [
            ("bearer", "alertmanager", None),
            ("bearer", "alertmanager", None),
        ]
    assert post_alert(signed_in, "alertmanager", bearer(first)) != 401
    assert post_alert(signed_in, "alertmanager", bearer(second)) != 401

    # Rotating again with the box ticked revokes the one rotated at once.
    second_id = max(credential_ids(admin_app))
    rotate = f"/admin/integrations/{integration_id}/webhooks/{second_id}/rotate"
    form = signed_in.get(rotate).get_data(as_text=True)
    answer = signed_in.post(
        rotate, data={"csrf_token": csrf_of(form), "revoke_old": "on"}, headers=REFERER
    )
    assert "The old credential is revoked" in answer.get_data(as_text=True)
    third = shown(answer, "secret")
    assert post_alert(signed_in, "alertmanager", bearer(second)) == 401
    assert post_alert(signed_in, "alertmanager", bearer(third)) != 401
    assert post_alert(signed_in, "alertmanager", bearer(first)) != 401


def test_a_revoked_credential_is_refused_with_401(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    before = credential_ids(admin_app)
    token = shown(issue(signed_in, integration_id, label="to revoke"), "secret")
    assert post_alert(signed_in, "generic", bearer(token)) == 202
    (credential_id,) = set(credential_ids(admin_app)) - set(before)

    revoke = f"/admin/integrations/{integration_id}/webhooks/{credential_id}/revoke"
    confirm = signed_in.get(revoke)
    assert "refused (401) from the next one on" in confirm.get_data(as_text=True)
    assert credential_ids(admin_app)[credential_id]  # asking changed nothing
    answer = signed_in.post(
        revoke, data={"csrf_token": csrf_of(confirm.get_data(as_text=True))}, headers=REFERER
    )
    assert answer.status_code == 302
    page = signed_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Revoked “to revoke”" in page
    assert re.search(r"<td>Revoked \d{4}-\d\d-\d\d", page)
    assert not credential_ids(admin_app)[credential_id]
    assert post_alert(signed_in, "generic", bearer(token)) == 401
    assert post_alert(signed_in, "generic", bearer(HOOK_TOKEN)) == 202  # the others still work


def test_a_post_without_the_csrf_token_is_refused(
    admin_app: Flask, signed_in: FlaskClient, integration_id: int
) -> None:
    before = credential_ids(admin_app)
    (seeded,) = before  # the HOOK_TOKEN's
    base = f"/admin/integrations/{integration_id}/webhooks"
    for path, data in (
        (base, {"scheme": "bearer", "source": "", "label": "forged"}),
        (f"{base}/{seeded}/rotate", {"revoke_old": "on"}),
        (f"{base}/{seeded}/revoke", {}),
    ):
        answer = signed_in.post(path, data=data, headers=REFERER)
        assert answer.status_code == 400, path
        assert "CSRF check failed" in answer.get_data(as_text=True)
    assert credential_ids(admin_app) == before
    assert all(before.values())


def test_another_integrations_credential_is_a_404_page(
    signed_in: FlaskClient, integration_id: int
) -> None:
    answer = signed_in.get(f"/admin/integrations/{integration_id}/webhooks/999/revoke")
    assert answer.status_code == 404
    assert "no webhook credential 999" in answer.get_data(as_text=True)


def test_the_integrations_tabs_and_mappings_page_link_here(
    signed_in: FlaskClient, integration_id: int
) -> None:
    link = f'href="/admin/integrations/{integration_id}/webhooks">Webhooks</a>'
    tabs = signed_in.get(f"/admin/integrations/{integration_id}/test-ticket")
    assert link in tabs.get_data(as_text=True)
    mappings = signed_in.get(f"/admin/integrations/{integration_id}/mappings")
    assert link in mappings.get_data(as_text=True)
