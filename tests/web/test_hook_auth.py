"""Webhook authentication: bearer, basic and HMAC credentials per integration and source.

The auth matrix checks that every refusal is a 401 that stores nothing; then the accepted cases,
rotation, replay protection, the credentials API and the configured credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import make_server

import connector.pipeline.intake as intake
import connector.web.hooks as hooks
from adapters import SOURCES
from connector import create_app
from connector.cli import prepare_database
from connector.errors import ConfigError, UnavailableError
from connector.integrations.credentials import new_credential
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    HookCredential,
    HookSignature,
    Integration,
    utcnow,
)
from tests import canaries
from tests.conftest import API_TOKEN, FIXTURES, GENERIC_ALERT, HOOK_TOKEN

ALERT = GENERIC_ALERT
BODY = json.dumps(ALERT).encode()

# Canary secrets: none may appear in an answer, a listing or the database in clear.
GENERIC_TOKEN = canaries.GENERIC_BEARER_TOKEN
ALERTMANAGER_TOKEN = canaries.ALERTMANAGER_BEARER_TOKEN
REVOKED_TOKEN = canaries.REVOKED_BEARER_TOKEN
BASIC_USER = "lm-sender"
BASIC_PASSWORD = canaries.BASIC_PASSWORD
HMAC_SECRET = canaries.HMAC_SECRET  # the key is its UTF-8 bytes
HMAC_ALERTMANAGER_SECRET = canaries.HMAC_ALERTMANAGER_SECRET
WRONG_SECRET = canaries.WRONG_HMAC_SECRET
#: A Standard Webhooks secret as such senders hand it out: "whsec_" + base64 of the key bytes.
WHSEC_KEY = canaries.STANDARD_WEBHOOKS_KEY
WHSEC_SECRET = canaries.STANDARD_WEBHOOKS_SECRET

NOTHING = {"alert": 0, "alert_event": 0, "delivery": 0}

#: For checks decided by configuration alone, one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: A body per source that its adapter accepts (files under tests/fixtures/sources/<slug>/).
SOURCE_BODIES = {
    "generic": "single_alert.json",
    "logicmonitor": "active.json",
    "datto_rmm": "triggered.json",
    "office_protect": "sign_in_unauthorized_country.json",
    "alertmanager": "firing.json",
}


def counts(app: Flask) -> dict[str, int]:
    """Committed rows of the tables a webhook writes."""
    with app.extensions["connector"].sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Alert, AlertEvent, Delivery)
        }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The documented signature, computed here independently of the connector's code."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def hmac_headers(secret: str, timestamp: int, body: bytes = BODY) -> dict[str, str]:
    return {
        "X-Connector-Timestamp": str(timestamp),
        "X-Connector-Signature": signature(secret, timestamp, body),
    }


def standard_signature(key: bytes, message_id: str, timestamp: int | str, body: bytes) -> str:
    """Standard Webhooks' `v1,<base64>` over "<id>.<timestamp>.<body>", computed independently."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_headers(
    key: bytes, timestamp: int, body: bytes = BODY, message_id: str = "msg_2Kq9"
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(key, message_id, timestamp, body),
    }


def post(
    client: FlaskClient, headers: dict[str, str], body: bytes = BODY, source: str = "generic"
) -> Any:
    return client.post(
        f"/hooks/{source}", data=body, headers=headers | {"Content-Type": "application/json"}
    )


@dataclass
class Clock:
    """The webhook's clock, frozen at a whole second so window edges are exact."""

    now: datetime

    @property
    def unix(self) -> int:
        return int(self.now.timestamp())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(utcnow().replace(microsecond=0))
    monkeypatch.setattr(hooks, "utcnow", lambda: frozen.now)
    return frozen


@dataclass
class Stored:
    integration_id: int
    ids: dict[str, int]


def add_credential(app: Flask, integration_id: int, **fields: Any) -> int:
    """Store a credential directly; return its id."""
    services = app.extensions["connector"]
    with services.transaction() as session:
        row = new_credential(services.secret_box(), integration_id, **fields)
        session.add(row)
        session.flush()
        return row.id


def revoke(app: Flask, credential_id: int) -> None:
    with app.extensions["connector"].transaction() as session:
        row = session.get(HookCredential, credential_id)
        assert row is not None
        row.revoked_at = utcnow()


@pytest.fixture
def stored(connector_app: Flask) -> Stored:
    """The default integration with one credential of each kind the matrix needs."""
    with connector_app.extensions["connector"].transaction() as session:
        integration_id = session.scalar(select(Integration.id).where(Integration.name == "default"))
    assert integration_id is not None
    specs: dict[str, dict[str, Any]] = {
        "generic-bearer": {"scheme": "bearer", "secret": GENERIC_TOKEN, "source": "generic"},
        "alertmanager-bearer": {
            "scheme": "bearer",
            "secret": ALERTMANAGER_TOKEN,
            "source": "alertmanager",
        },
        "revoked-bearer": {"scheme": "bearer", "secret": REVOKED_TOKEN},
        "basic": {"scheme": "basic", "username": BASIC_USER, "secret": BASIC_PASSWORD},
        "hmac": {"scheme": "hmac", "secret": HMAC_SECRET, "source": "generic"},
        "standard-webhooks": {"scheme": "hmac", "secret": WHSEC_SECRET, "source": "generic"},
        "alertmanager-hmac": {
            "scheme": "hmac",
            "secret": HMAC_ALERTMANAGER_SECRET,
            "source": "alertmanager",
        },
    }
    ids = {
        name: add_credential(connector_app, integration_id, **spec) for name, spec in specs.items()
    }
    revoke(connector_app, ids["revoked-bearer"])
    return Stored(integration_id, ids)


# -- the auth matrix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A request that must be refused: its headers and body at a given second, and why."""

    headers: Callable[[int], dict[str, str]]
    message: str
    body: bytes = BODY
    #: Sent first and accepted (the replay case), so the refused copy must add nothing to it.
    accepted_first: bool = False


def altered(body: bytes) -> bytes:
    """The body with one byte changed."""
    index = body.index(b"srv01")
    return body[:index] + b"srv02" + body[index + 5 :]


REFUSALS = {
    "missing-header": Refusal(lambda t: {}, "missing webhook credentials"),
    "wrong-bearer-token": Refusal(
        lambda t: bearer("not-a-token-of-anyone-000000"), "bearer token not accepted"
    ),
    "token-of-another-source": Refusal(
        lambda t: bearer(ALERTMANAGER_TOKEN), "bearer token not accepted"
    ),
    "revoked-token": Refusal(lambda t: bearer(REVOKED_TOKEN), "bearer token not accepted"),
    "empty-bearer": Refusal(lambda t: {"Authorization": "Bearer "}, "token is empty"),
    "wrong-basic-password": Refusal(
        lambda t: basic(BASIC_USER, canaries.NOT_THE_BASIC_PASSWORD),
        "basic credentials not accepted",
    ),
    "unknown-basic-user": Refusal(
        lambda t: basic("nobody", BASIC_PASSWORD), "basic credentials not accepted"
    ),
    "malformed-basic": Refusal(
        lambda t: {"Authorization": "Basic not-base64!"}, "malformed Authorization: Basic"
    ),
    "stale-timestamp-301s": Refusal(lambda t: hmac_headers(HMAC_SECRET, t - 301), "is 301 s old"),
    "future-timestamp-301s": Refusal(
        lambda t: hmac_headers(HMAC_SECRET, t + 301), "is 301 s in the future"
    ),
    "replayed-signature": Refusal(
        lambda t: hmac_headers(HMAC_SECRET, t), "accepted before (replay)", accepted_first=True
    ),
    "body-altered-by-one-byte": Refusal(
        lambda t: hmac_headers(HMAC_SECRET, t), "does not match", body=altered(BODY)
    ),
    "signature-with-wrong-secret": Refusal(
        lambda t: hmac_headers(WRONG_SECRET, t), "does not match"
    ),
    "secret-of-another-source": Refusal(
        lambda t: hmac_headers(HMAC_ALERTMANAGER_SECRET, t), "does not match"
    ),
    "malformed-signature-header": Refusal(
        lambda t: {"X-Connector-Timestamp": str(t), "X-Connector-Signature": "sha256=xyz"},
        "malformed X-Connector-Signature",
    ),
    "signature-without-sha256-prefix": Refusal(
        lambda t: {
            "X-Connector-Timestamp": str(t),
            "X-Connector-Signature": signature(HMAC_SECRET, t, BODY).removeprefix("sha256="),
        },
        "malformed X-Connector-Signature",
    ),
    "malformed-timestamp": Refusal(
        lambda t: {
            "X-Connector-Timestamp": "yesterday",
            "X-Connector-Signature": signature(HMAC_SECRET, "yesterday", BODY),
        },
        "malformed X-Connector-Timestamp",
    ),
    "standard-webhooks-wrong-key": Refusal(
        lambda t: standard_headers(canaries.NOT_THE_STANDARD_WEBHOOKS_KEY, t),
        "no webhook-signature",
    ),
    "standard-webhooks-body-altered-by-one-byte": Refusal(
        lambda t: standard_headers(WHSEC_KEY, t), "no webhook-signature", body=altered(BODY)
    ),
    "standard-webhooks-stale-timestamp": Refusal(
        lambda t: standard_headers(WHSEC_KEY, t - 301), "webhook-timestamp is 301 s old"
    ),
    "standard-webhooks-without-id": Refusal(
        lambda t: {k: v for k, v in standard_headers(WHSEC_KEY, t).items() if k != "webhook-id"},
        "needs the webhook-id header",
    ),
    "standard-webhooks-unknown-version-only": Refusal(
        lambda t: standard_headers(WHSEC_KEY, t) | {"webhook-signature": "v1a,abc"},
        "malformed webhook-signature",
    ),
    "signature-without-timestamp": Refusal(
        lambda t: {"X-Connector-Signature": signature(HMAC_SECRET, t, BODY)},
        "needs X-Connector-Timestamp",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS.values()), ids=list(REFUSALS))
def test_refused_credentials_are_401_and_store_nothing(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock, case: Refusal
) -> None:
    headers = case.headers(clock.unix)
    if case.accepted_first:
        assert post(client, headers, case.body).status_code == 202
    before = counts(connector_app)

    response = post(client, headers, case.body)

    assert response.status_code == 401, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == 401
    assert case.message in error["message"]
    assert "Bearer" in response.headers["WWW-Authenticate"]
    for secret in (GENERIC_TOKEN, ALERTMANAGER_TOKEN, BASIC_PASSWORD, HMAC_SECRET):
        assert secret not in response.get_data(as_text=True)
    assert counts(connector_app) == before
    if not case.accepted_first:
        assert before == NOTHING


# -- accepted --------------------------------------------------------------------------------------


def test_every_registered_source_has_a_body_here() -> None:
    assert sorted(SOURCE_BODIES) == sorted(SOURCES)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_preset_any_source_token_works_on_every_source(
    client: FlaskClient, connector_app: Flask, source: str
) -> None:
    body = (FIXTURES / "sources" / source / SOURCE_BODIES[source]).read_bytes()

    response = post(client, bearer(HOOK_TOKEN), body, source=source)

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["accepted"]
    with connector_app.extensions["connector"].sessions() as session:
        preset = session.scalars(select(HookCredential).where(HookCredential.label == "preset"))
        assert [(row.scheme, row.source) for row in preset] == [("bearer", None)]


def test_a_source_limited_token_works_on_its_own_source(
    client: FlaskClient, connector_app: Flask, stored: Stored
) -> None:
    body = (FIXTURES / "sources" / "alertmanager" / "firing.json").read_bytes()

    response = post(client, bearer(ALERTMANAGER_TOKEN), body, source="alertmanager")

    assert response.status_code == 202, response.get_data(as_text=True)
    assert post(client, bearer(GENERIC_TOKEN)).status_code == 202


def test_basic_credentials_are_accepted(
    client: FlaskClient, connector_app: Flask, stored: Stored
) -> None:
    response = post(client, basic(BASIC_USER, BASIC_PASSWORD))

    assert response.status_code == 202, response.get_data(as_text=True)
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


@pytest.mark.parametrize("skew", [-300, 0, 300], ids=["300s-old", "now", "300s-ahead"])
def test_a_signature_within_the_window_is_accepted(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock, skew: int
) -> None:
    response = post(client, hmac_headers(HMAC_SECRET, clock.unix + skew))

    assert response.status_code == 202, response.get_data(as_text=True)
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


def test_a_standard_webhooks_request_is_accepted_among_invalid_signatures(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock
) -> None:
    headers = standard_headers(WHSEC_KEY, clock.unix)
    # The sender rotating its own secret lists several signatures: one valid one is enough.
    wrong = standard_signature(canaries.OLD_STANDARD_WEBHOOKS_KEY, "msg_2Kq9", clock.unix, BODY)
    headers["webhook-signature"] = f"v2,abc {wrong} {headers['webhook-signature']}"

    response = post(client, headers)

    assert response.status_code == 202, response.get_data(as_text=True)
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


def test_a_plain_hmac_secret_also_verifies_standard_webhooks(
    client: FlaskClient, stored: Stored, clock: Clock
) -> None:
    headers = standard_headers(HMAC_SECRET.encode(), clock.unix, message_id="msg_plain")

    response = post(client, headers)

    assert response.status_code == 202, response.get_data(as_text=True)


def test_a_retry_of_a_delivered_message_is_200_and_stores_nothing_again(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock
) -> None:
    first = post(client, standard_headers(WHSEC_KEY, clock.unix, message_id="msg_a"))
    after_first = counts(connector_app)
    # The sender did not hear the 202 and retries: same id, a later timestamp, a new signature.
    retry = post(client, standard_headers(WHSEC_KEY, clock.unix + 30, message_id="msg_a"))
    other = post(client, standard_headers(WHSEC_KEY, clock.unix, message_id="msg_b"))

    assert first.status_code == 202
    assert retry.status_code == 200, retry.get_data(as_text=True)
    assert retry.get_json()["accepted"] == []
    assert retry.get_json()["duplicate"] is True
    assert after_first == {"alert": 1, "alert_event": 1, "delivery": 1}
    assert other.status_code == 202  # a new id is a new message (recorded as a duplicate event)
    assert counts(connector_app)["alert_event"] == 2


def test_a_forged_retry_of_a_delivered_message_is_still_refused(
    client: FlaskClient, stored: Stored, clock: Clock
) -> None:
    assert (
        post(client, standard_headers(WHSEC_KEY, clock.unix, message_id="msg_a")).status_code == 202
    )
    forged = standard_headers(
        canaries.NOT_THE_STANDARD_WEBHOOKS_KEY, clock.unix, message_id="msg_a"
    )

    assert post(client, forged).status_code == 401


def test_signed_requests_ignore_the_authorization_header(
    client: FlaskClient, stored: Stored, clock: Clock
) -> None:
    """HMAC headers decide alone: a valid bearer token cannot rescue a bad signature."""
    headers = hmac_headers(WRONG_SECRET, clock.unix) | bearer(HOOK_TOKEN)

    assert post(client, headers).status_code == 401


@sqlite_only
def test_a_signature_in_upper_case_hex_is_the_same_signature(
    client: FlaskClient, stored: Stored, clock: Clock
) -> None:
    """Replays are recognized by the signature's bytes, not by how its hex is spelt."""
    headers = hmac_headers(HMAC_SECRET, clock.unix)
    digits = headers["X-Connector-Signature"].removeprefix("sha256=")
    upper = headers | {"X-Connector-Signature": f"SHA256={digits.upper()}"}

    assert post(client, headers).status_code == 202
    assert post(client, upper).status_code == 401


# -- rotation --------------------------------------------------------------------------------------


def credential_headers(scheme: str, secret: str, clock: Clock, body: bytes) -> dict[str, str]:
    if scheme == "bearer":
        return bearer(secret)
    if scheme == "basic":
        return basic(BASIC_USER, secret)
    return hmac_headers(secret, clock.unix, body)


@pytest.mark.parametrize("scheme", ["bearer", "basic", "hmac"])
def test_two_live_secrets_both_work_until_the_old_one_is_revoked(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock, scheme: str
) -> None:
    old_secret, new_secret = canaries.ROTATED_HOOK_SECRETS[scheme]
    username = {"username": BASIC_USER} if scheme == "basic" else {}
    old, new = (
        add_credential(
            connector_app,
            stored.integration_id,
            scheme=scheme,
            secret=s,
            source="generic",
            **username,
        )
        for s in (old_secret, new_secret)
    )
    bodies = iter(
        json.dumps(dict(ALERT, occurred_at=f"2026-11-22T10:0{n}:00Z")).encode() for n in range(9)
    )

    def send(secret: str) -> int:
        body = next(bodies)
        status: int = post(
            client, credential_headers(scheme, secret, clock, body), body
        ).status_code
        return status

    assert [send(old_secret), send(new_secret)] == [202, 202]

    response = client.delete(
        f"/api/v1/integrations/{stored.integration_id}/hook-credentials/{old}",
        headers=bearer(API_TOKEN),
    )
    assert response.status_code == 200
    before = counts(connector_app)

    assert [send(old_secret), send(new_secret)] == [401, 202]
    assert counts(connector_app)["delivery"] == before["delivery"] + 1


# -- replay protection -----------------------------------------------------------------------------


def signature_rows(app: Flask) -> int:
    with app.extensions["connector"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(HookSignature)) or 0)


def test_expired_signatures_are_purged_by_later_requests(
    client: FlaskClient, connector_app: Flask, stored: Stored, clock: Clock
) -> None:
    first = hmac_headers(HMAC_SECRET, clock.unix)
    assert post(client, first).status_code == 202
    assert signature_rows(connector_app) == 1

    clock.now += timedelta(seconds=601)
    later = json.dumps(dict(ALERT, status="cleared")).encode()
    assert post(client, hmac_headers(HMAC_SECRET, clock.unix, later), later).status_code == 202

    assert signature_rows(connector_app) == 1  # the first one's window is over: purged
    assert post(client, first).status_code == 401  # and its timestamp is refused anyway


def test_a_signed_request_that_could_not_be_committed_can_be_sent_again(
    client: FlaskClient,
    connector_app: Flask,
    stored: Stored,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signature is remembered in the events' transaction: a 503 does not burn it."""
    real_ingest = intake.ingest

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(intake, "ingest", real_ingest)
        raise UnavailableError("the database cannot take the request now; retry")

    monkeypatch.setattr(intake, "ingest", unavailable)
    headers = hmac_headers(HMAC_SECRET, clock.unix)

    assert post(client, headers).status_code == 503
    assert signature_rows(connector_app) == 0
    assert post(client, headers).status_code == 202
    assert post(client, headers).status_code == 401


@pytest.fixture
def live_url(connector_app: Flask) -> Iterator[str]:
    """The connector served by werkzeug (threaded) on 127.0.0.1 and a free port."""
    server = make_server("127.0.0.1", 0, connector_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_copies_of_one_signed_request_sent_at_once_are_accepted_once(
    live_url: str, connector_app: Flask, stored: Stored
) -> None:
    headers = hmac_headers(HMAC_SECRET, int(utcnow().timestamp())) | {
        "Content-Type": "application/json"
    }
    start = threading.Barrier(5)

    def send(_: int) -> int:
        start.wait(timeout=10)
        with requests.Session() as session:
            return session.post(
                f"{live_url}/hooks/generic", data=BODY, headers=headers, timeout=60
            ).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = sorted(pool.map(send, range(5)))

    assert statuses == [202, 401, 401, 401, 401]
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


# -- the credentials API ---------------------------------------------------------------------------


def api(client: FlaskClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", bearer(API_TOKEN))
    if body is not None:
        kwargs["json"] = body
    return client.open(f"/api/v1/integrations/{path}", method=method, **kwargs)


def default_id(app: Flask) -> int:
    with app.extensions["connector"].sessions() as session:
        found = session.scalar(select(Integration.id).where(Integration.name == "default"))
    assert found is not None
    return int(found)


def listed(client: FlaskClient, integration_id: int) -> list[dict[str, Any]]:
    response = api(client, "GET", f"{integration_id}/hook-credentials")
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["hook_credentials"])


PUBLIC_FIELDS = {
    "id",
    "integration_id",
    "scheme",
    "source",
    "label",
    "username",
    "created_at",
    "revoked_at",
}


@pytest.mark.parametrize(
    ("body", "secret_field"),
    [
        pytest.param({"scheme": "bearer", "label": "alertmanager"}, "token", id="bearer"),
        pytest.param(
            {"scheme": "bearer", "source": "generic", "label": "generic only"},
            "token",
            id="bearer-one-source",
        ),
        pytest.param({"scheme": "basic", "username": "datto"}, "password", id="basic"),
        pytest.param({"scheme": "hmac", "source": "generic"}, "secret", id="hmac"),
    ],
)
def test_a_created_credential_shows_its_secret_once_and_works(
    client: FlaskClient,
    connector_app: Flask,
    clock: Clock,
    body: dict[str, Any],
    secret_field: str,
) -> None:
    integration_id = default_id(connector_app)

    response = api(client, "POST", f"{integration_id}/hook-credentials", body)

    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    secret = created.pop(secret_field)
    assert len(secret) >= 43  # 256 bits, url-safe base64
    assert set(created) == PUBLIC_FIELDS
    assert created["scheme"] == body["scheme"]
    assert created["source"] == body.get("source")
    assert created["label"] == body.get("label", "")
    assert created["username"] == body.get("username")
    assert created["revoked_at"] is None
    everything = listed(client, integration_id)
    assert created in everything
    assert secret not in json.dumps(everything)
    assert all(set(item) == PUBLIC_FIELDS for item in everything)

    if body["scheme"] == "basic":
        headers = basic(body["username"], secret)
    else:
        headers = credential_headers(body["scheme"], secret, clock, BODY)
    assert post(client, headers).status_code == 202


@sqlite_only
@pytest.mark.parametrize("scheme", ["bearer", "hmac"])
def test_a_generated_secret_appears_in_its_one_answer_and_nowhere_else(
    client: FlaskClient,
    connector_app: Flask,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    """The canary check (tests/canary_plugin.py) against a secret the connector makes itself."""
    from connector.integrations import credentials
    from tests import canary_plugin

    monkeypatch.setattr(credentials, "new_token", lambda: canaries.GENERATED_HOOK_SECRET)
    path = f"{default_id(connector_app)}/hook-credentials"

    created = api(client, "POST", path, {"scheme": scheme, "source": "generic"})
    listed(client, default_id(connector_app))
    headers = credential_headers(scheme, canaries.GENERATED_HOOK_SECRET, clock, BODY)
    assert post(client, headers).status_code == 202

    assert created.get_json()[{"bearer": "token", "hmac": "secret"}[scheme]] == (
        canaries.GENERATED_HOOK_SECRET
    )
    # Shown once, as made: in that answer's body, in no other answer, log record or output.
    shown = f"{canaries.GENERATED_HOOK_SECRET!r} in the body of the answer to POST /api/v1/"
    assert [leak.startswith(shown) for leak in canary_plugin.leaks()] == [True]
    canary_plugin.forget()  # the stored rows are still looked at, after the test


@sqlite_only
def test_the_database_holds_no_secret_in_clear(
    client: FlaskClient, connector_app: Flask, stored: Stored
) -> None:
    with connector_app.extensions["connector"].sessions() as session:
        rows = session.execute(select(HookCredential.__table__)).all()
    dump = json.dumps([list(map(str, row)) for row in rows])
    for secret in (GENERIC_TOKEN, ALERTMANAGER_TOKEN, BASIC_PASSWORD, HMAC_SECRET, HOOK_TOKEN):
        assert secret not in dump
    assert BASIC_USER in dump


@sqlite_only
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "scheme", id="no-scheme"),
        pytest.param({"scheme": "digest"}, "scheme", id="unknown-scheme"),
        pytest.param({"scheme": "bearer", "source": "nagios"}, "source", id="unknown-source"),
        pytest.param({"scheme": "bearer", "source": 5}, "source", id="numeric-source"),
        pytest.param({"scheme": "basic"}, "username", id="basic-without-username"),
        pytest.param({"scheme": "basic", "username": "a:b"}, "username", id="colon-in-username"),
        pytest.param({"scheme": "hmac", "username": "x"}, "username", id="username-for-hmac"),
        pytest.param(
            {"scheme": "bearer", "token": canaries.OWN_BEARER_TOKEN}, "token", id="own-token"
        ),
        pytest.param(
            {"scheme": "hmac", "secret": canaries.OWN_HMAC_SECRET}, "secret", id="own-secret"
        ),
        pytest.param({"scheme": "bearer", "label": "x" * 101}, "label", id="label-too-long"),
    ],
)
def test_bad_credential_bodies_are_400_naming_the_field(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], field: str
) -> None:
    integration_id = default_id(connector_app)
    before = listed(client, integration_id)

    response = api(client, "POST", f"{integration_id}/hook-credentials", body)

    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert list(error["details"]["fields"]) == [field]
    assert field in error["message"]
    assert listed(client, integration_id) == before


@sqlite_only
@pytest.mark.parametrize("raw", [b"[]", b"not json", b""], ids=["array", "not-json", "empty"])
def test_a_credential_body_that_is_not_an_object_is_400(
    client: FlaskClient, connector_app: Flask, raw: bytes
) -> None:
    response = api(
        client,
        "POST",
        f"{default_id(connector_app)}/hook-credentials",
        data=raw,
        headers=bearer(API_TOKEN) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 400


def test_delete_revokes_and_the_credential_stops_working(
    client: FlaskClient, connector_app: Flask
) -> None:
    integration_id = default_id(connector_app)
    created = api(client, "POST", f"{integration_id}/hook-credentials", {"scheme": "bearer"})
    token, cid = created.get_json()["token"], created.get_json()["id"]
    assert post(client, bearer(token)).status_code == 202

    response = api(client, "DELETE", f"{integration_id}/hook-credentials/{cid}")

    assert response.status_code == 200
    revoked_at = response.get_json()["revoked_at"]
    assert revoked_at is not None
    before = counts(connector_app)
    assert post(client, bearer(token)).status_code == 401
    assert counts(connector_app) == before
    [shown] = [c for c in listed(client, integration_id) if c["id"] == cid]
    assert shown["revoked_at"] == revoked_at
    again = api(client, "DELETE", f"{integration_id}/hook-credentials/{cid}")
    assert again.status_code == 200
    assert again.get_json()["revoked_at"] == revoked_at
    assert post(client, bearer(HOOK_TOKEN)).status_code == 202  # the others still work


@sqlite_only
def test_unknown_integrations_and_credentials_are_404(
    client: FlaskClient, connector_app: Flask
) -> None:
    integration_id = default_id(connector_app)
    with connector_app.extensions["connector"].transaction() as session:
        other = Integration(
            name="other",
            zone_lookup_url="https://webservices.autotask.net/atservicesrest/",
            username="other@example.net",
            secret_encrypted="x",
            integration_code_encrypted="x",
        )
        session.add(other)
        session.flush()
        other_id = other.id
    foreign = api(client, "POST", f"{other_id}/hook-credentials", {"scheme": "bearer"})
    foreign_id = foreign.get_json()["id"]

    for method, path, body in [
        ("GET", "999/hook-credentials", None),
        ("POST", "999/hook-credentials", {"scheme": "bearer"}),
        ("DELETE", "999/hook-credentials/1", None),
        ("DELETE", f"{integration_id}/hook-credentials/999", None),
        ("DELETE", f"{integration_id}/hook-credentials/{foreign_id}", None),
    ]:
        response = api(client, method, path, body)
        assert response.status_code == 404, (method, path)
    assert [c["revoked_at"] for c in listed(client, other_id)] == [None]


@sqlite_only
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "hook-credentials", None),
        ("POST", "hook-credentials", {"scheme": "bearer"}),
        ("DELETE", "hook-credentials/1", None),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(bearer("not-the-token"), id="wrong"),
        pytest.param(bearer(HOOK_TOKEN), id="hook-token"),
    ],
)
def test_the_credentials_api_needs_the_api_token(
    client: FlaskClient,
    connector_app: Flask,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    integration_id = default_id(connector_app)
    before = listed(client, integration_id)

    response = api(client, method, f"{integration_id}/{path}", body, headers=headers)

    assert response.status_code == 401
    assert listed(client, integration_id) == before


# -- configured credentials ------------------------------------------------------------------------

CONFIGURED = [
    {"scheme": "bearer", "source": "alertmanager", "token": ALERTMANAGER_TOKEN, "label": "am"},
    {"scheme": "basic", "username": BASIC_USER, "password": BASIC_PASSWORD},
    {"scheme": "hmac", "source": "generic", "secret": HMAC_SECRET, "label": "ci"},
]


def configured_app(settings: dict[str, Any], credentials: list[dict[str, Any]]) -> Flask:
    integration = dict(settings["INTEGRATION"], hook_credentials=credentials)
    return create_app(dict(settings, INTEGRATION=integration))


def stored_credentials(app: Flask) -> list[tuple[str, str | None, str, str | None]]:
    with app.extensions["connector"].sessions() as session:
        rows = session.scalars(select(HookCredential).order_by(HookCredential.id))
        return [(r.scheme, r.source, r.label, r.username) for r in rows]


def test_configured_credentials_are_synced_once_and_work(
    connector_settings: dict[str, Any], clock: Clock
) -> None:
    app = configured_app(connector_settings, CONFIGURED)
    try:
        prepare_database(app.extensions["connector"])
        first = stored_credentials(app)
        prepare_database(app.extensions["connector"])  # a restart
        prepare_database(app.extensions["connector"])

        assert stored_credentials(app) == first
        assert sorted(first, key=str) == sorted(
            [
                ("bearer", "alertmanager", "am", None),
                ("basic", None, "", BASIC_USER),
                ("hmac", "generic", "ci", None),
                ("bearer", None, "preset", None),
            ],
            key=str,
        )
        client = app.test_client()
        am_body = (FIXTURES / "sources" / "alertmanager" / "firing.json").read_bytes()
        assert post(client, bearer(ALERTMANAGER_TOKEN), am_body, "alertmanager").status_code == 202
        assert post(client, bearer(ALERTMANAGER_TOKEN)).status_code == 401
        assert post(client, basic(BASIC_USER, BASIC_PASSWORD)).status_code == 202
        assert post(client, hmac_headers(HMAC_SECRET, clock.unix)).status_code == 202
    finally:
        app.extensions["connector"].dispose()


def test_a_changed_label_or_source_updates_the_configured_credential(
    connector_settings: dict[str, Any],
) -> None:
    app = configured_app(connector_settings, CONFIGURED)
    try:
        prepare_database(app.extensions["connector"])
    finally:
        app.extensions["connector"].dispose()
    changed = [dict(CONFIGURED[0], source=None, label="every source")]
    app = configured_app(connector_settings, changed)
    try:
        prepare_database(app.extensions["connector"])
        assert ("bearer", None, "every source", None) in stored_credentials(app)
        assert len(stored_credentials(app)) == 4
    finally:
        app.extensions["connector"].dispose()


def test_a_revoked_configured_credential_stays_revoked_after_a_restart(
    connector_settings: dict[str, Any],
) -> None:
    app = configured_app(connector_settings, CONFIGURED[:1])
    try:
        services = app.extensions["connector"]
        prepare_database(services)
        with services.transaction() as session:
            row = session.scalars(select(HookCredential).where(HookCredential.label == "am")).one()
            row.revoked_at = utcnow()
        prepare_database(services)
        with services.sessions() as session:
            rows = session.scalars(select(HookCredential).where(HookCredential.label == "am")).all()
        assert [row.revoked_at is not None for row in rows] == [True]
    finally:
        app.extensions["connector"].dispose()


@sqlite_only
@pytest.mark.parametrize(
    ("entry", "names"),
    [
        pytest.param({"scheme": "bearer", "token": "short"}, "token", id="token-too-short"),
        pytest.param(
            {"scheme": "bearer", "token": GENERIC_TOKEN, "source": "nagios"},
            "source",
            id="unknown-source",
        ),
        pytest.param({"scheme": "basic", "password": BASIC_PASSWORD}, "username", id="no-user"),
        pytest.param({"scheme": "basic", "username": "u"}, "password", id="no-password"),
        pytest.param({"scheme": "hmac", "token": HMAC_SECRET}, "secret", id="hmac-with-token"),
        pytest.param({"scheme": "jwt", "token": GENERIC_TOKEN}, "scheme", id="unknown-scheme"),
        pytest.param({"scheme": "bearer", "tokn": GENERIC_TOKEN}, "tokn", id="misspelt-key"),
    ],
)
def test_invalid_configured_credentials_stop_the_start_naming_the_field(
    connector_settings: dict[str, Any], entry: dict[str, Any], names: str
) -> None:
    app = configured_app(connector_settings, [entry])
    try:
        with pytest.raises(ConfigError, match="hook_credentials") as raised:
            prepare_database(app.extensions["connector"])
    finally:
        app.extensions["connector"].dispose()
    message = str(raised.value)
    assert names in message
    for secret in (GENERIC_TOKEN, BASIC_PASSWORD, HMAC_SECRET):
        assert secret not in message


@sqlite_only
def test_hook_credentials_must_be_a_list(connector_settings: dict[str, Any]) -> None:
    integration = dict(connector_settings["INTEGRATION"], hook_credentials={"scheme": "bearer"})
    app = create_app(dict(connector_settings, INTEGRATION=integration))
    try:
        with pytest.raises(ConfigError, match="must be a list"):
            prepare_database(app.extensions["connector"])
    finally:
        app.extensions["connector"].dispose()


@sqlite_only
def test_configured_credentials_never_show_in_the_integration_settings(
    connector_settings: dict[str, Any],
) -> None:
    app = configured_app(connector_settings, CONFIGURED)
    try:
        prepare_database(app.extensions["connector"])
        client = app.test_client()
        integration_id = default_id(app)
        shown = client.get(f"/api/v1/integrations/{integration_id}", headers=bearer(API_TOKEN))
        text = shown.get_data(as_text=True) + json.dumps(listed(client, integration_id))
    finally:
        app.extensions["connector"].dispose()
    assert shown.status_code == 200
    for secret in (ALERTMANAGER_TOKEN, BASIC_PASSWORD, HMAC_SECRET):
        assert secret not in text
