"""Refused webhooks: an authenticated refusal is kept for the admin, an anonymous one only logged.

Every refusal is answered as before (the same 4xx and JSON envelope); once the credentials were
accepted it is also one `rejected_webhook` row, visible through GET /api/v1/rejected-webhooks
with the status, message, details and request id the sender got. A 401 or an unknown source
writes nothing and is logged without the presented secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import connector.web.hooks as hooks
from connector import create_app
from connector.cli import prepare_database
from connector.errors import UnavailableError
from connector.integrations.credentials import new_credential
from connector.logs import TextFormatter
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    Integration,
    RejectedWebhook,
    utcnow,
)
from connector.pipeline.rejections import EXCERPT_BYTES, excerpt, storable
from tests import canaries
from tests.conftest import API_TOKEN, GENERIC_ALERT, HOOK_TOKEN, default_integration_id, error_of

ALERT = GENERIC_ALERT
JSON = "application/json"
#: Sent with every refused webhook: no header value may end up in a record.
HEADER_CANARY = canaries.SENDER_HEADER_VALUE
#: Presented by refused senders: never in an answer, a record or a log line.
WRONG_TOKEN = canaries.WRONG_BEARER_TOKEN
WRONG_PASSWORD = canaries.WRONG_BASIC_PASSWORD
HMAC_SECRET = canaries.HMAC_REFUSALS_SECRET

NOTHING = {"alert": 0, "alert_event": 0, "delivery": 0}
#: What only the single record shows: the kept body.
BODY_FIELDS = {"body_excerpt", "body", "body_base64"}


def hook_auth(token: str = HOOK_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Debug-Canary": HEADER_CANARY}


def api_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def send(
    client: FlaskClient,
    body: bytes,
    content_type: str | None = JSON,
    *,
    source: str = "generic",
    headers: dict[str, str] | None = None,
) -> Any:
    sent = hook_auth() if headers is None else headers
    if content_type is not None:
        sent = sent | {"Content-Type": content_type}
    return client.post(f"/hooks/{source}", data=body, headers=sent)


def counts(app: Flask) -> dict[str, int]:
    """Committed rows of the tables an accepted webhook writes."""
    with app.extensions["connector"].sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Alert, AlertEvent, Delivery)
        }


def stored_rejections(app: Flask) -> int:
    with app.extensions["connector"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RejectedWebhook)) or 0)


def listed(client: FlaskClient, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/rejected-webhooks", headers=api_auth(), query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["rejected_webhooks"])


def detail(client: FlaskClient, rejected_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/rejected-webhooks/{rejected_id}", headers=api_auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def padded_alert(size: int) -> bytes:
    alert = json.dumps(ALERT).encode()
    return alert + b" " * (size - len(alert))


# -- authenticated refusals are recorded -----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A webhook refused after its credentials were accepted, and what its record must hold."""

    body: bytes
    status: int
    message: str
    content_type: str | None = JSON
    #: The keys of the error's details, or None when it has none.
    details: list[str] | None = None
    #: The excerpt the record keeps; by default the whole (short) body as text.
    excerpt: str | None = field(default=None)
    #: 413: the size only, no excerpt.
    no_excerpt: bool = False


MANY_ALERTS = json.dumps({"alerts": [dict(ALERT, id=f"a{n}") for n in range(501)]}).encode()

RECORDED = {
    "invalid-json": Recorded(b'{"id": "disk-srv01", "status": ', 400, "not valid JSON"),
    "not-utf8-with-nul": Recorded(b"\xff\xfe\x00", 400, "not valid JSON", excerpt="\ufffd" * 3),
    "json-not-an-object": Recorded(b"[1, 2]", 400, "JSON object"),
    "wrong-field-type": Recorded(
        json.dumps(dict(ALERT, severity=5)).encode(), 400, "severity", details=["severity"]
    ),
    "several-bad-fields": Recorded(
        json.dumps({"status": "exploded", "severity": 5}).encode(),
        400,
        "invalid alert field(s)",
        details=["id", "severity", "status", "title"],
    ),
    "wrong-content-type": Recorded(
        json.dumps(ALERT).encode(), 415, "Content-Type: application/json", content_type="text/plain"
    ),
    "no-content-type": Recorded(
        json.dumps(ALERT).encode(), 415, "Content-Type: application/json", content_type=None
    ),
    "too-many-alerts": Recorded(
        MANY_ALERTS,
        400,
        "too many alerts in one webhook: 501",
        details=["alerts"],
        excerpt=MANY_ALERTS[:EXCERPT_BYTES].decode(),
    ),
}


@pytest.mark.parametrize("case", list(RECORDED.values()), ids=list(RECORDED))
def test_an_authenticated_refusal_is_answered_and_recorded_as_answered(
    client: FlaskClient, connector_app: Flask, case: Recorded
) -> None:
    response = send(client, case.body, case.content_type)

    error = error_of(response, case.status)
    assert case.message in error["message"]
    [row] = listed(client)
    assert row["status"] == case.status
    assert row["message"] == error["message"]
    assert row["request_id"] == error["request_id"]
    assert row["details"] == error.get("details")
    if case.details is None:
        assert row["details"] is None
    else:
        assert sorted(row["details"]) == case.details
    assert row["integration_id"] == default_integration_id(connector_app)
    assert row["source"] == "generic"
    assert row["content_type"] == (case.content_type or "")
    assert row["body_size"] == len(case.body)
    assert "body_excerpt" not in row  # the list stays light; the record has it
    record = detail(client, row["id"])
    expected = case.excerpt if case.excerpt is not None else case.body.decode()
    assert record["body_excerpt"] == expected
    # The whole body is kept, exactly, so that nothing is lost and it can be replayed.
    assert base64.b64decode(record["body_base64"]) == case.body
    assert record["body"] == case.body.decode("utf-8", "replace")
    assert {k: v for k, v in record.items() if k not in BODY_FIELDS} == row
    # The excerpt is the body only: no header value, no credential.
    assert HEADER_CANARY not in json.dumps(record)
    assert HOOK_TOKEN not in json.dumps(record)
    # Nothing of the refused webhook itself was stored.
    assert counts(connector_app) == NOTHING


def test_a_known_sender_posting_to_an_unknown_source_is_told_the_sources_and_recorded(
    client: FlaskClient,
) -> None:
    """A typo in the URL a sender was given: 404 naming the sources, kept for the admin."""
    response = client.post(
        "/hooks/nagios", data=json.dumps(ALERT), headers=hook_auth() | {"Content-Type": JSON}
    )

    error = error_of(response, 404)
    assert "no source named 'nagios'; known: alertmanager, datto_rmm, generic" in error["message"]
    [row] = listed(client)
    assert (row["status"], row["source"]) == (404, "nagios")


def test_a_body_over_the_limit_is_recorded_with_its_size_only(
    client: FlaskClient, connector_app: Flask
) -> None:
    limit = connector_app.config["MAX_CONTENT_LENGTH"]
    body = padded_alert(limit + 1)

    error = error_of(send(client, body), 413)

    [row] = listed(client, status=413)
    assert (row["message"], row["request_id"]) == (error["message"], error["request_id"])
    assert row["body_size"] == limit + 1
    assert row["content_type"] == JSON
    assert detail(client, row["id"])["body_excerpt"] is None
    assert counts(connector_app) == NOTHING


def test_a_wrong_content_type_over_the_limit_is_recorded_unread(
    client: FlaskClient, connector_app: Flask
) -> None:
    """The 415 is decided first; the body, too large to read, is kept as its size only."""
    limit = connector_app.config["MAX_CONTENT_LENGTH"]

    error = error_of(send(client, padded_alert(limit + 1), "text/plain"), 415)

    [row] = listed(client)
    assert (row["status"], row["request_id"]) == (415, error["request_id"])
    assert row["body_size"] == limit + 1
    assert detail(client, row["id"])["body_excerpt"] is None


def test_a_signed_refusal_is_recorded_without_its_signature(
    client: FlaskClient, connector_app: Flask
) -> None:
    services = connector_app.extensions["connector"]
    with services.transaction() as session:
        session.add(
            new_credential(
                services.secret_box(),
                default_integration_id(connector_app),
                scheme="hmac",
                secret=HMAC_SECRET,
            )
        )
    body = json.dumps(dict(ALERT, status="exploded")).encode()
    timestamp = str(int(utcnow().timestamp()))
    mac = hmac.new(HMAC_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {
        "X-Connector-Timestamp": timestamp,
        "X-Connector-Signature": f"sha256={mac.hexdigest()}",
    }

    error = error_of(send(client, body, headers=headers), 400)

    [row] = listed(client)
    assert (row["status"], row["request_id"]) == (400, error["request_id"])
    assert list(row["details"]) == ["status"]
    record = json.dumps(detail(client, row["id"]))
    assert mac.hexdigest() not in record
    assert HMAC_SECRET not in record


def test_accepted_webhooks_and_retries_record_nothing(
    client: FlaskClient, connector_app: Flask
) -> None:
    for _ in range(2):  # accepted, then a duplicate: both 202
        assert send(client, json.dumps(ALERT).encode()).status_code == 202

    assert listed(client) == []
    assert stored_rejections(connector_app) == 0


# -- anonymous refusals are logged, never stored ---------------------------------------------------


def basic(username: str, password: str) -> dict[str, str]:
    import base64

    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@dataclass(frozen=True)
class Anonymous:
    """A refusal of a sender whose credentials were not accepted: logged, not recorded."""

    headers: dict[str, str]
    status: int
    reason: str
    source: str = "generic"
    #: Presented by the sender; must appear nowhere.
    secret: str = WRONG_TOKEN


ANONYMOUS = {
    # Like a bad token: no list of sources before the sender is known (issue 15).
    "unknown-source": Anonymous(
        hook_auth(WRONG_TOKEN), 401, "bearer token not accepted", source="nagios"
    ),
    "wrong-bearer-token": Anonymous(hook_auth(WRONG_TOKEN), 401, "bearer token not accepted"),
    "wrong-basic-password": Anonymous(
        basic("lm-sender", WRONG_PASSWORD),
        401,
        "basic credentials not accepted",
        secret=WRONG_PASSWORD,
    ),
    "token-in-the-query-string-only": Anonymous({}, 401, "missing webhook credentials"),
    "bad-signature": Anonymous(
        {"X-Connector-Timestamp": "1795341600", "X-Connector-Signature": f"sha256={'0' * 64}"},
        401,
        "X-Connector-Timestamp is",
    ),
}


@pytest.mark.parametrize("case", list(ANONYMOUS.values()), ids=list(ANONYMOUS))
def test_an_anonymous_refusal_is_logged_without_the_secret_and_not_stored(
    client: FlaskClient,
    connector_app: Flask,
    caplog: pytest.LogCaptureFixture,
    case: Anonymous,
) -> None:
    caplog.set_level(logging.DEBUG)

    response = client.post(
        f"/hooks/{case.source}",
        data=b'{"id": "x", "status": ',  # would be a 400 once authenticated
        headers=case.headers | {"Content-Type": JSON},
        query_string={"token": WRONG_TOKEN},
    )

    error = error_of(response, case.status)
    assert case.reason in error["message"]
    assert stored_rejections(connector_app) == 0
    assert listed(client) == []
    assert counts(connector_app) == NOTHING
    [record] = [r for r in caplog.records if r.getMessage().startswith("hook.refused")]
    assert record.levelno == logging.WARNING
    assert record.source == case.source  # type: ignore[attr-defined]
    assert record.status == case.status  # type: ignore[attr-defined]
    assert record.remote_addr == "127.0.0.1"  # type: ignore[attr-defined]
    assert record.reason == error["message"]  # type: ignore[attr-defined]
    assert record.request_id == error["request_id"]  # type: ignore[attr-defined]
    # The line people read names the reason (the fields are printed after the event name).
    assert case.reason in TextFormatter().format(record)
    # Neither the text nor any structured field of any log record holds the presented secret.
    everything = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    for secret in (case.secret, WRONG_TOKEN, WRONG_PASSWORD, HOOK_TOKEN):
        assert secret not in everything


def test_a_signed_body_over_the_limit_is_refused_before_its_sender_is_known(
    client: FlaskClient, connector_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A signature covers the body, so an over-long signed body is refused unauthenticated."""
    caplog.set_level(logging.WARNING)
    limit = connector_app.config["MAX_CONTENT_LENGTH"]
    headers = {"X-Connector-Timestamp": "1795341600", "X-Connector-Signature": "sha256=00"}

    error_of(send(client, padded_alert(limit + 1), headers=headers), 413)

    assert stored_rejections(connector_app) == 0
    assert any(r.getMessage().startswith("hook.refused_unauthenticated") for r in caplog.records)


# -- the record never turns a 4xx into a 500 -------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("recorder bug"), UnavailableError("the database cannot take the request now")],
    ids=["bug", "database-down"],
)
def test_a_failing_record_still_answers_the_4xx_and_logs_it(
    client: FlaskClient,
    connector_app: Flask,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(hooks, "record_rejection", fail)
    caplog.set_level(logging.WARNING)

    error = error_of(send(client, json.dumps(dict(ALERT, severity=5)).encode()), 400)

    assert list(error["details"]) == ["severity"]
    assert stored_rejections(connector_app) == 0
    [logged] = [r for r in caplog.records if r.getMessage().startswith("hook.refusal_not_recorded")]
    assert logged.levelno == logging.ERROR
    assert logged.request_id == error["request_id"]  # type: ignore[attr-defined]
    assert logged.exc_info is not None and logged.exc_info[1] is failure
    # The next refusal is recorded again.
    monkeypatch.undo()
    error_of(send(client, b"{"), 400)
    assert [row["status"] for row in listed(client)] == [400]


# -- bounded per integration -----------------------------------------------------------------------


@pytest.fixture
def capped_app(connector_settings: dict[str, Any]) -> Iterator[Flask]:
    """A connector keeping 3 refused webhooks per integration, with a second integration."""
    app = create_app(dict(connector_settings, REJECTED_WEBHOOKS_KEPT=3))
    services = app.extensions["connector"]
    prepare_database(services)
    with services.transaction() as session:
        default = session.scalars(select(Integration).where(Integration.name == "default")).one()
        second = Integration(
            name="second",
            api_flavour=default.api_flavour,
            zone_lookup_url=default.zone_lookup_url,
            username=default.username,
            secret_encrypted=default.secret_encrypted,
            integration_code_encrypted=default.integration_code_encrypted,
            settings=dict(default.settings),
        )
        session.add(second)
        session.flush()
        session.add(
            new_credential(services.secret_box(), second.id, scheme="bearer", secret=SECOND_TOKEN)
        )
    yield app
    services.dispose()


SECOND_TOKEN = canaries.SECOND_INTEGRATION_TOKEN


def test_the_oldest_records_of_an_integration_go_beyond_the_cap(capped_app: Flask) -> None:
    client = capped_app.test_client()
    second = send(client, b"{second", headers=hook_auth(SECOND_TOKEN))
    error_of(second, 400)
    answered = [
        error_of(send(client, f'{{"n": {n},'.encode()), 400)["request_id"] for n in range(5)
    ]

    default_id = default_integration_id(capped_app)
    kept = listed(client, integration_id=default_id)
    # Newest first; the two oldest are gone.
    assert [row["request_id"] for row in kept] == answered[:1:-1]
    assert [detail(client, row["id"])["body_excerpt"] for row in kept] == [
        '{"n": 4,',
        '{"n": 3,',
        '{"n": 2,',
    ]
    # Another integration's records are not pruned by this one's.
    [other] = listed(client, integration_id=default_id + 1)
    assert other["request_id"] == second.get_json()["error"]["request_id"]
    assert stored_rejections(capped_app) == 4


# -- the API ---------------------------------------------------------------------------------------


def test_listing_filters_and_pages_newest_first(client: FlaskClient) -> None:
    error_of(send(client, b"{"), 400)
    error_of(send(client, b"{}", "text/plain"), 415)
    error_of(send(client, b"{}", source="alertmanager"), 400)

    assert [r["status"] for r in listed(client)] == [400, 415, 400]
    assert [r["source"] for r in listed(client, source="alertmanager")] == ["alertmanager"]
    assert [r["status"] for r in listed(client, status=415)] == [415]
    assert [r["source"] for r in listed(client, status=400)] == ["alertmanager", "generic"]
    assert listed(client, integration_id=999) == []
    assert [r["status"] for r in listed(client, limit=1, offset=1)] == [415]
    [first] = listed(client, limit=1)
    assert listed(client, request_id=first["request_id"]) == [first]
    page = client.get("/api/v1/rejected-webhooks?limit=2", headers=api_auth()).get_json()
    assert (page["limit"], page["offset"], len(page["rejected_webhooks"])) == (2, 0, 2)


@pytest.mark.parametrize(
    "database_url", ["sqlite"], indirect=True
)  # refused before any query: one database is enough
@pytest.mark.parametrize(
    "query",
    [
        {"integration_id": "one"},
        {"status": "4xx"},
        {"status": str(2**64)},
        {"limit": "0"},
        {"offset": "-1"},
    ],
    ids=["integration-id", "status", "status-too-big", "limit", "offset"],
)
def test_bad_filters_are_400(client: FlaskClient, query: dict[str, str]) -> None:
    response = client.get("/api/v1/rejected-webhooks", headers=api_auth(), query_string=query)

    error = error_of(response, 400)
    assert next(iter(query)) in error["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", ["rejected-webhooks", "rejected-webhooks/1"])
def test_the_api_needs_the_api_token(client: FlaskClient, path: str) -> None:
    for headers in ({}, {"Authorization": f"Bearer {HOOK_TOKEN}"}):
        error_of(client.get(f"/api/v1/{path}", headers=headers), 401)


def test_an_unknown_record_is_404(client: FlaskClient) -> None:
    error = error_of(client.get("/api/v1/rejected-webhooks/4242", headers=api_auth()), 404)

    assert "4242" in error["message"]


# -- the excerpt -----------------------------------------------------------------------------------


def test_the_excerpt_is_the_first_4096_bytes_as_utf8() -> None:
    body = b"a" * (EXCERPT_BYTES - 1) + "é".encode() + b"tail"

    cut = excerpt(body)

    # The first 4,096 bytes end inside "é": that half becomes one replacement character.
    assert cut == "a" * (EXCERPT_BYTES - 1) + "\ufffd"
    assert excerpt(b"ok\x00\xff") == "ok\ufffd\ufffd"


def test_text_that_no_database_could_store_is_made_storable() -> None:
    assert storable("lone \ud800 and nul \x00") == "lone \ufffd\ufffd\ufffd and nul \ufffd"
    assert storable("plain é") == "plain é"


# -- replay ----------------------------------------------------------------------------------------


def replay(client: FlaskClient, rejected_id: int) -> Any:
    return client.post(f"/api/v1/rejected-webhooks/{rejected_id}/replay", headers=api_auth())


@pytest.fixture
def upgraded_generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A connector upgraded to know the status word "raised" (the old one refused it)."""
    from marshmallow import fields, validate

    from adapters.sources import generic

    words = dict(generic.STATUS_WORDS, raised=generic.AlertStatus.ACTIVE)

    class UpgradedSchema(generic.GenericAlertSchema):
        status = fields.String(required=True, validate=validate.OneOf(sorted(words)))

    def upgrade() -> None:
        monkeypatch.setattr(generic, "STATUS_WORDS", words)
        monkeypatch.setattr(generic, "_ALERT_SCHEMA", UpgradedSchema())

    return upgrade


def test_a_refused_webhook_is_taken_in_by_a_replay_once_it_can_be_read(
    client: FlaskClient, connector_app: Flask, upgraded_generic: Callable[[], None]
) -> None:
    body = json.dumps(dict(ALERT, status="raised")).encode()
    error_of(send(client, body), 400)
    [row] = listed(client)

    # The same connector still cannot read it: 422, and the row stays as it was.
    still = replay(client, row["id"])
    assert "still cannot be read" in error_of(still, 422)["message"]
    assert listed(client) == [row]

    upgraded_generic()
    response = replay(client, row["id"])

    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    [accepted] = answer["accepted"]
    assert (accepted["index"], accepted["disposition"]) == (0, "queued")
    assert answer["rejected"] == []
    assert answer["rejected_webhook_id"] == row["id"]
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}
    [replayed] = listed(client)
    assert replayed["replayed_at"] == answer["replayed_at"]
    assert replayed["replay_result"] == {
        "accepted": answer["accepted"],
        "rejected": [],
        "request_id": answer["request_id"],
    }
    # A second replay would ingest it twice: refused.
    assert "replayed" in error_of(replay(client, row["id"]), 409)["message"]
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


def test_a_replay_keeps_the_alerts_it_still_cannot_read(
    client: FlaskClient, connector_app: Flask, upgraded_generic: Callable[[], None]
) -> None:
    bad = [dict(ALERT, id="a", status="raised"), dict(ALERT, id="b", severity="fatal")]
    error_of(send(client, json.dumps({"alerts": bad}).encode()), 400)
    [row] = listed(client)
    upgraded_generic()

    answer = replay(client, row["id"]).get_json()

    assert [a["index"] for a in answer["accepted"]] == [0]
    [rejected] = answer["rejected"]
    assert (rejected["index"], list(rejected["details"])) == (1, ["alerts.1.severity"])
    kept = detail(client, rejected["rejected_webhook_id"])
    assert (kept["status"], kept["alert_index"], kept["request_id"]) == (
        202,
        1,
        answer["request_id"],
    )
    assert json.loads(kept["body"]) == bad[1]


def test_replays_of_one_row_at_once_take_it_in_once(
    connector_app: Flask, upgraded_generic: Callable[[], None]
) -> None:
    client = connector_app.test_client()
    error_of(send(client, json.dumps(dict(ALERT, status="raised")).encode()), 400)
    [row] = listed(client)
    upgraded_generic()
    start = threading.Barrier(4)

    def replay_at_once(_: int) -> int:
        start.wait(timeout=10)
        return int(replay(connector_app.test_client(), row["id"]).status_code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(replay_at_once, range(4)))

    assert statuses == [202, 409, 409, 409]
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_body_that_was_never_read_cannot_be_replayed(
    client: FlaskClient, connector_app: Flask
) -> None:
    limit = connector_app.config["MAX_CONTENT_LENGTH"]
    error_of(send(client, padded_alert(limit + 1)), 413)
    [row] = listed(client)

    error = error_of(replay(client, row["id"]), 422)

    assert "no body" in error["message"]
    assert listed(client) == [row]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_replaying_needs_the_api_token_and_a_known_record(client: FlaskClient) -> None:
    error_of(send(client, b"{"), 400)
    [row] = listed(client)

    for headers in ({}, {"Authorization": f"Bearer {HOOK_TOKEN}"}):
        path = f"/api/v1/rejected-webhooks/{row['id']}/replay"
        error_of(client.post(path, headers=headers), 401)
    assert "4242" in error_of(replay(client, 4242), 404)["message"]
