"""No secret leaves through the admin form: every page, with real rows behind it, and every log;
and every such page is usable: a label for every field, no inline script or style (the CSP).

The crawl takes every GET route under /admin/ from the app's URL map (so a page added later is
covered without touching this test) and fills each id in the path with a row that exists: an
integration with its saved Autotask credentials, an alert delivered to the sandbox, a dead
letter, a refused webhook, an issued webhook credential. The secrets are canaries.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from adapters.sandbox import ApiUser
from connector.persistence.models import (
    Alert,
    ApiCall,
    Delivery,
    HookCredential,
    Integration,
    RejectedWebhook,
)
from connector.wiring import make_worker
from tests.conftest import API_TOKEN, GENERIC_ALERT, HOOK_TOKEN
from tests.web.admin.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.with_integration


def _deliver_everything(app: Flask) -> None:
    """Run a real worker (real REST target, the sandbox) until nothing is due."""
    worker = make_worker(app.extensions["connector"], worker_id="sweep")
    for _ in range(20):  # a bound: each round delivers what is due
        if not worker.run_once():
            return
    pytest.fail("the worker still had work after 20 rounds")


def _populate(app: Flask, client: FlaskClient) -> dict[str, str]:
    """An alert ticketed, a refused webhook, an issued credential, a dead letter; the secrets
    that appeared on the way (the issued credential's)."""
    hook = {"Authorization": f"Bearer {HOOK_TOKEN}"}
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.post("/hooks/generic", json=GENERIC_ALERT, headers=hook).status_code == 202
    refused = client.post(
        "/hooks/generic",
        data=b'{"id": "C:\\Temp',
        headers={**hook, "Content-Type": "application/json"},
    )
    assert refused.status_code == 400
    with app.extensions["connector"].transaction() as session:
        integration_id = session.scalars(select(Integration.id)).one()
    issued = client.post(
        f"/api/v1/integrations/{integration_id}/hook-credentials",
        json={"scheme": "bearer", "source": "generic", "label": "sweep"},
        headers=api,
    )
    assert issued.status_code == 201, issued.get_json()
    credential_secret = next(
        value for key, value in issued.get_json().items() if key in ("token", "secret", "password")
    )
    _deliver_everything(app)
    # A dead letter: the next alert's delivery, failed for good (as a refused create leaves it).
    later = {**GENERIC_ALERT, "id": "dead-letter", "title": 'Quotes " and C:\\Temp\\x 🚨'}
    assert client.post("/hooks/generic", json=later, headers=hook).status_code == 202
    with app.extensions["connector"].transaction() as session:
        dead = session.scalars(select(Delivery).where(Delivery.state == "pending")).one()
        dead.state, dead.outcome = "dead", "failed"
        dead.last_error = "Autotask refused the ticket: companyID 999 does not exist"
    return {"credential": str(credential_secret)}


def _ids(app: Flask) -> dict[str, int | str]:
    """A row that exists for every kind of id an admin path can carry (and a request's slot)."""
    with app.extensions["connector"].transaction() as session:

        def first(column: Any) -> int:
            found = session.scalars(select(column).order_by(column)).first()
            assert found is not None, column
            return int(found)

        return {
            "integration_id": first(Integration.id),
            "alert_id": first(Alert.id),
            "delivery_id": first(Delivery.id),
            "rejected_id": first(RejectedWebhook.id),
            "credential_id": first(HookCredential.id),
            "call_id": first(ApiCall.id),
            # A delivery request's slot (the request editor's pages).
            "status": "active",
            "action": "create",
        }


def _pages(app: Flask, ids: dict[str, int | str]) -> list[str]:
    """Every GET path under /admin/, its ids filled in with existing rows."""
    paths = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or "GET" not in rule.methods:
            continue
        if rule.endpoint in ("admin.static", "admin.login"):
            continue
        unknown = set(rule.arguments) - set(ids)
        assert not unknown, f"{rule.rule}: teach this test an existing row for {unknown}"
        paths.append(rule.build({name: ids[name] for name in rule.arguments})[1])
    return paths


def test_no_secret_is_in_any_admin_page_or_log_after_it_is_saved(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = {
        "Autotask secret": api_user.secret,
        "tracking identifier": api_user.integration_code,
        "preset webhook token": HOOK_TOKEN,
        "API token": API_TOKEN,
        "admin password": PASSWORD,
        **_populate(admin_app, admin_app.test_client()),
    }
    sign_in(browser)
    paths = _pages(admin_app, _ids(admin_app))
    assert len(paths) >= 8
    looked_at = 0
    for path in paths:
        # Plainly, then with filters a page may know (or refuse in words: a 400 page).
        for query, allowed in (("", (200, 302, 303)), ("?q=a&status=error", (200, 302, 303, 400))):
            response = browser.get(path + query)
            assert response.status_code in allowed, (path, query, response.status_code)
            page = response.get_data(as_text=True)
            for name, secret in secrets.items():
                assert secret not in page, f"the {name} is in {path}{query}"
            looked_at += 1
    assert looked_at >= 16
    for record in caplog.records:
        text = f"{record.getMessage()} {vars(record)}"
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} is in the log event {record.getMessage()!r}"


#: Fields that need no label of their own.
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


def _unlabelled_fields(page: str) -> list[str]:
    """The fields of `page` no label names (by `for`, by wrapping, or by aria-label(ledby))."""
    import lxml.html

    document = lxml.html.fromstring(page)
    labelled = {label.get("for") for label in document.iter("label") if label.get("for")}
    missing = []
    for field in document.iter("input", "select", "textarea"):
        if (field.get("type") or "text").lower() in UNLABELLED_TYPES:
            continue
        named = (
            field.get("id") in labelled
            or field.get("aria-label")
            or field.get("aria-labelledby")
            or any(parent.tag == "label" for parent in field.iterancestors())
        )
        if not named:
            missing.append(lxml.html.tostring(field, encoding="unicode")[:120])
    return missing


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the HTML is the same
def test_every_admin_page_labels_its_fields_and_has_no_inline_script_or_style(
    admin_app: Flask, browser: FlaskClient
) -> None:
    assert _unlabelled_fields('<form><input name="q"><select id="s"></select></form>') != []
    assert (
        _unlabelled_fields(
            '<label for="q">Q</label><input id="q"><label>S <select></select></label>'
        )
        == []
    )
    _populate(admin_app, admin_app.test_client())
    sign_in(browser)
    checked = 0
    for path in _pages(admin_app, _ids(admin_app)):
        response = browser.get(path)
        if response.status_code != 200:
            continue
        page = response.get_data(as_text=True)
        assert not _unlabelled_fields(page), (path, _unlabelled_fields(page))
        assert "<script>" not in page and "<script " not in page.replace("<script src=", ""), path
        assert " style=" not in page, path
        checked += 1
    assert checked >= 10
