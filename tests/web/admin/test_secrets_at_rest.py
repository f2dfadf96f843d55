"""A `pg_dump` of a configured, used connector holds no secret in clear (S2 and S8 of
../shared/reference/reliability-security.md; §4.1, §4.4).

The connector is configured with the Autotask secret and tracking identifier, a preset webhook
token and API token, and an admin; then webhook credentials of every scheme are issued through
the API, one bearer token is rotated (the old one revoked), every credential sends a webhook, a
refused webhook is kept, alerts are delivered to the sandbox and the admin signs in. The schema
is dumped with PostgreSQL's own pg_dump and every plaintext looked for: bearer tokens and
session tokens must be there as SHA-256 digests only, the rest as ciphertext only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from base64 import b64encode
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from adapters.sandbox import ApiUser
from tests.conftest import (
    API_TOKEN,
    GENERIC_ALERT,
    HOOK_TOKEN,
    IN_CI,
    cannot_run,
    default_integration_id,
)
from tests.web.admin.conftest import PASSWORD, sign_in
from tests.web.admin.test_no_secret_in_pages import _deliver_everything

pytestmark = [
    pytest.mark.with_integration,
    pytest.mark.parametrize(
        "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
    ),
]

API = {"Authorization": f"Bearer {API_TOKEN}"}
#: Presented but never accepted: it must not be kept either.
WRONG_TOKEN = "canary-wrong-bearer-5d0e77c2"


def pg_dump(database_url: str) -> str:
    """The plain-SQL dump of the test's own schema, by pg_dump; fails when pg_dump is missing
    where the PostgreSQL tests must run."""
    program = shutil.which("pg_dump")
    if program is None:
        required = IN_CI or bool(os.environ.get("CONNECTOR_TEST_POSTGRES_URL"))
        cannot_run("pg_dump is not installed", required=required)
    url = sa.engine.make_url(database_url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    libpq = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    dumped = subprocess.run(
        [program, f"--dbname={libpq}", f"--schema={schema}", "--no-owner"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dumped.returncode == 0, dumped.stderr
    return dumped.stdout


def issue(client: FlaskClient, integration_id: int, **body: str) -> tuple[int, str]:
    """Issue a webhook credential through the API: its id and its secret (shown this once)."""
    response = client.post(
        f"/api/v1/integrations/{integration_id}/hook-credentials", json=body, headers=API
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    secret = next(created[key] for key in ("token", "password", "secret") if key in created)
    return int(created["id"]), str(secret)


def send(client: FlaskClient, headers: dict[str, str], alert_id: str, body: bytes = b"") -> int:
    """POST a generic alert (or `body`) with `headers`; the status."""
    data = body or json.dumps({**GENERIC_ALERT, "id": alert_id}).encode()
    response = client.post(
        "/hooks/generic", data=data, headers={**headers, "Content-Type": "application/json"}
    )
    return int(response.status_code)


def signed(secret: str, alert_id: str) -> tuple[dict[str, str], bytes]:
    """The documented X-Connector signature headers for a generic alert, and its body."""
    body = json.dumps({**GENERIC_ALERT, "id": alert_id}).encode()
    timestamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Connector-Timestamp": timestamp, "X-Connector-Signature": f"sha256={mac}"}
    return headers, body


def configure_and_use(app: Flask, client: FlaskClient) -> dict[str, str]:
    """Issue, rotate and use every kind of webhook credential; the secrets issued on the way."""
    integration_id = default_integration_id(app)
    old_id, old_bearer = issue(client, integration_id, scheme="bearer", source="generic")
    _, new_bearer = issue(client, integration_id, scheme="bearer", source="generic")
    _, alertmanager = issue(client, integration_id, scheme="bearer", source="alertmanager")
    _, basic = issue(client, integration_id, scheme="basic", username="lm-sender")
    _, hmac_secret = issue(client, integration_id, scheme="hmac", source="generic")

    assert send(client, {"Authorization": f"Bearer {old_bearer}"}, "old") == 202
    revoked = client.delete(
        f"/api/v1/integrations/{integration_id}/hook-credentials/{old_id}", headers=API
    )
    assert revoked.status_code == 200
    assert send(client, {"Authorization": f"Bearer {old_bearer}"}, "old-again") == 401
    assert send(client, {"Authorization": f"Bearer {new_bearer}"}, "new") == 202
    assert send(client, {"Authorization": f"Bearer {HOOK_TOKEN}"}, "preset") == 202
    pair = b64encode(f"lm-sender:{basic}".encode()).decode()
    assert send(client, {"Authorization": f"Basic {pair}"}, "basic") == 202
    hmac_headers, hmac_body = signed(hmac_secret, "hmac")
    assert send(client, hmac_headers, "hmac", hmac_body) == 202
    assert send(client, {"Authorization": f"Bearer {WRONG_TOKEN}"}, "wrong") == 401
    # A refused body is kept for replay, with the token that sent it in front of it.
    refused = b'{"id": "kept", "status": '
    assert send(client, {"Authorization": f"Bearer {new_bearer}"}, "", refused) == 400
    _deliver_everything(app)
    return {
        "revoked bearer token": old_bearer,
        "rotated-in bearer token": new_bearer,
        "alertmanager bearer token": alertmanager,
        "basic password": basic,
        "HMAC secret": hmac_secret,
    }


def test_a_pg_dump_holds_every_token_as_a_digest_and_no_secret_in_clear(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser, database_url: str
) -> None:
    issued = configure_and_use(admin_app, admin_app.test_client())
    assert sign_in(browser).status_code == 303
    with browser.session_transaction("/admin/") as session:
        admin_session_token = str(session["admin_token"])
    hashed_only = {
        "preset webhook token": HOOK_TOKEN,
        "API token": API_TOKEN,
        "revoked bearer token": issued["revoked bearer token"],
        "rotated-in bearer token": issued["rotated-in bearer token"],
        "alertmanager bearer token": issued["alertmanager bearer token"],
        "admin session token": admin_session_token,
    }
    never = {
        **hashed_only,
        "Autotask secret": api_user.secret,
        "tracking identifier (ApiIntegrationCode)": api_user.integration_code,
        "basic password": issued["basic password"],
        "HMAC secret": issued["HMAC secret"],
        "admin password": PASSWORD,
        "refused token": WRONG_TOKEN,
    }

    dump = pg_dump(database_url)

    assert "COPY" in dump and "hook_credential" in dump and api_user.username in dump
    assert '"id": "kept"' in dump  # the refused body is in the dump: rows were dumped
    for name, secret in never.items():
        assert secret not in dump, f"the {name} is in the pg_dump in clear"
    for name, token in hashed_only.items():
        assert hashlib.sha256(token.encode()).hexdigest() in dump, f"no digest of the {name}"


def test_the_admin_pages_of_the_configured_integration_show_none_of_its_secrets(
    admin_app: Flask, browser: FlaskClient, api_user: ApiUser
) -> None:
    issued = configure_and_use(admin_app, admin_app.test_client())
    sign_in(browser)
    integration = f"/admin/integrations/{default_integration_id(admin_app)}"
    pages: dict[str, Any] = {}
    for path in (f"{integration}/edit", f"{integration}/webhooks", "/admin/integrations"):
        response = browser.get(path)
        assert response.status_code == 200, path
        pages[path] = response.get_data(as_text=True)
    for path, page in pages.items():
        for name, secret in {
            **issued,
            "Autotask secret": api_user.secret,
            "tracking identifier": api_user.integration_code,
        }.items():
            assert secret not in page, f"the {name} is in {path}"
