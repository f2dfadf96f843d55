"""POST /hooks/<source>: every answer of the webhook table, and that a refusal writes nothing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from connector import create_app
from connector.persistence.models import Alert, AlertEvent, Delivery, HookCredential, utcnow
from tests import canaries
from tests.conftest import API_TOKEN, HOOK_TOKEN

ALERT: dict[str, Any] = {
    "id": "disk-srv01",
    "status": "active",
    "severity": "error",
    "title": "Disk full on srv01",
    "message": "/var is 99% full",
    "host": "srv01",
    "started_at": "2026-11-22T10:00:00Z",
    "occurred_at": "2026-11-22T10:00:05Z",
}


def auth(token: str = HOOK_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client: FlaskClient, body: Any, *, source: str = "generic", **kwargs: Any) -> Any:
    """POST `body` as JSON with the hook token (unless headers are given)."""
    kwargs.setdefault("headers", auth())
    return client.post(f"/hooks/{source}", json=body, **kwargs)


def counts(app: Flask) -> dict[str, int]:
    """Committed rows of the tables a webhook writes."""
    with app.extensions["connector"].sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Alert, AlertEvent, Delivery)
        }


NOTHING = {"alert": 0, "alert_event": 0, "delivery": 0}

#: For refusals decided before anything is written, one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def assert_refused(response: Any, status: int, app: Flask) -> dict[str, Any]:
    """The JSON error envelope with `status`, and not one row written; returns the error."""
    assert response.status_code == status, response.text
    body = response.json() if isinstance(response, requests.Response) else response.get_json()
    error = body["error"]
    assert error["status"] == status
    assert error["message"]
    assert len(error["request_id"]) == 32
    assert counts(app) == NOTHING
    return dict(error)


def pending_deliveries(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/deliveries?state=pending", headers=auth(API_TOKEN))
    assert response.status_code == 200
    return list(response.get_json()["deliveries"])


# -- 202 ------------------------------------------------------------------------------------------


def test_accepted_post_answers_202_with_committed_event_ids(
    client: FlaskClient, connector_app: Flask
) -> None:
    response = post(client, ALERT)

    assert response.status_code == 202
    [accepted] = response.get_json()["accepted"]
    assert accepted["disposition"] == "queued"
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}
    with connector_app.extensions["connector"].sessions() as session:
        event = session.get(AlertEvent, accepted["event_id"])
        assert event is not None
        assert event.alert_id == accepted["alert_id"]
        assert event.status == "active"
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.event_id == accepted["event_id"]
    assert delivery.state == "pending"
    assert delivery.attempts == 0


def test_batch_answers_one_entry_per_alert_in_order(
    client: FlaskClient, connector_app: Flask
) -> None:
    alerts = [dict(ALERT, id=f"disk-srv0{n}", host=f"srv0{n}") for n in range(1, 4)]

    response = post(client, {"alerts": alerts})

    assert response.status_code == 202
    accepted = response.get_json()["accepted"]
    assert [a["disposition"] for a in accepted] == ["queued"] * 3
    assert len({a["alert_id"] for a in accepted}) == 3
    assert counts(connector_app) == {"alert": 3, "alert_event": 3, "delivery": 3}


def test_repeat_of_the_same_event_is_a_duplicate_without_a_second_delivery(
    client: FlaskClient, connector_app: Flask
) -> None:
    first = post(client, ALERT).get_json()["accepted"][0]

    response = post(client, ALERT)

    assert response.status_code == 202
    [again] = response.get_json()["accepted"]
    assert again["disposition"] == "duplicate"
    assert again["alert_id"] == first["alert_id"]
    assert again["event_id"] != first["event_id"]
    assert counts(connector_app) == {"alert": 1, "alert_event": 2, "delivery": 1}
    assert [d["event_id"] for d in pending_deliveries(client)] == [first["event_id"]]


def test_same_status_at_a_new_source_time_is_a_new_delivery(
    client: FlaskClient, connector_app: Flask
) -> None:
    post(client, ALERT)

    response = post(client, dict(ALERT, occurred_at="2026-11-22T11:00:05Z"))

    assert response.get_json()["accepted"][0]["disposition"] == "queued"
    assert counts(connector_app)["delivery"] == 2


def test_fire_clear_fire_without_timestamps_gives_three_deliveries(
    client: FlaskClient, connector_app: Flask
) -> None:
    bare = {"id": "cpu-srv02", "title": "CPU high on srv02"}

    dispositions = [
        post(client, dict(bare, status=status)).get_json()["accepted"][0]["disposition"]
        for status in ("active", "active", "cleared", "cleared", "active", "active")
    ]

    # Each repeat within a clear cycle is a duplicate; the re-fire after the clear is not.
    assert dispositions == ["queued", "duplicate", "queued", "duplicate", "queued", "duplicate"]
    assert counts(connector_app) == {"alert": 1, "alert_event": 6, "delivery": 3}
    statuses = [d["state"] for d in pending_deliveries(client)]
    assert statuses == ["pending"] * 3


def test_acknowledgements_with_different_notes_are_separate_deliveries(
    client: FlaskClient, connector_app: Flask
) -> None:
    post(client, ALERT)
    ack = dict(ALERT, status="acknowledged", occurred_at=None, acknowledged_by="jane")

    dispositions = [
        post(client, dict(ack, note=note)).get_json()["accepted"][0]["disposition"]
        for note in ("looking", "looking", "disk replaced")
    ]

    assert dispositions == ["queued", "duplicate", "queued"]
    assert counts(connector_app)["delivery"] == 3


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("firing", "active"),
        ("resolved", "cleared"),
        ("ack", "acknowledged"),
        ("ESCALATED", "escalated"),
        (" Firing ", "active"),
    ],
)
def test_status_synonyms_are_normalized(
    client: FlaskClient, connector_app: Flask, word: str, status: str
) -> None:
    response = post(client, dict(ALERT, status=word))

    assert response.status_code == 202
    [accepted] = response.get_json()["accepted"]
    detail = client.get(f"/api/v1/alerts/{accepted['alert_id']}", headers=auth(API_TOKEN))
    assert detail.get_json()["status"] == status
    assert detail.get_json()["events"][0]["status"] == status


# -- 401 ------------------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-authorization"),
        pytest.param(auth(canaries.WRONG_BEARER_TOKEN), id="wrong-token"),
        pytest.param(auth(API_TOKEN), id="api-token"),
        pytest.param({"Authorization": f"Basic {HOOK_TOKEN}"}, id="basic-scheme"),
        pytest.param({"Authorization": HOOK_TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param({"X-Hook-Token": HOOK_TOKEN}, id="custom-header"),
    ],
)
def test_bad_credentials_are_401(
    client: FlaskClient, connector_app: Flask, headers: dict[str, str]
) -> None:
    assert_refused(post(client, ALERT, headers=headers), 401, connector_app)


@sqlite_only
@pytest.mark.parametrize("name", ["token", "access_token", "api_key"])
def test_token_in_the_query_string_is_401(
    client: FlaskClient, connector_app: Flask, name: str
) -> None:
    response = post(client, ALERT, headers={}, query_string={name: HOOK_TOKEN})

    assert_refused(response, 401, connector_app)


def test_revoked_token_is_401(client: FlaskClient, connector_app: Flask) -> None:
    with connector_app.extensions["connector"].transaction() as session:
        session.execute(update(HookCredential).values(revoked_at=utcnow()))

    assert_refused(post(client, ALERT), 401, connector_app)


@sqlite_only
def test_credentials_are_checked_before_the_body(client: FlaskClient, connector_app: Flask) -> None:
    response = client.post(
        "/hooks/generic", data=b"{not json", headers={"Content-Type": "text/plain"}
    )

    assert_refused(response, 401, connector_app)


# -- 404, 405, 415 --------------------------------------------------------------------------------


@sqlite_only
def test_unknown_source_is_404_naming_the_known_ones(
    client: FlaskClient, connector_app: Flask
) -> None:
    error = assert_refused(post(client, ALERT, source="nagios"), 404, connector_app)

    assert "'nagios'" in error["message"]
    assert "generic" in error["message"]


@sqlite_only
def test_get_on_a_hook_is_405(client: FlaskClient, connector_app: Flask) -> None:
    assert_refused(client.get("/hooks/generic", headers=auth()), 405, connector_app)


@sqlite_only
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        None,
    ],
    ids=["text", "form", "xml", "none"],
)
def test_non_json_content_type_is_415(
    client: FlaskClient, connector_app: Flask, content_type: str | None
) -> None:
    headers = auth() | ({"Content-Type": content_type} if content_type else {})

    response = client.post("/hooks/generic", data=json.dumps(ALERT), headers=headers)

    assert_refused(response, 415, connector_app)


@sqlite_only
def test_json_content_type_with_parameters_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/hooks/generic",
        data=json.dumps(ALERT),
        headers=auth() | {"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 202


# -- 413 ------------------------------------------------------------------------------------------


def padded_alert(size: int) -> bytes:
    """A valid alert padded with whitespace to `size` bytes."""
    alert = json.dumps(ALERT).encode()
    return alert + b" " * (size - len(alert))


@sqlite_only
@pytest.mark.parametrize(("extra", "status"), [(0, 202), (1, 413)], ids=["limit", "limit+1"])
def test_body_over_max_content_length_is_413(
    client: FlaskClient, connector_app: Flask, extra: int, status: int
) -> None:
    limit = connector_app.config["MAX_CONTENT_LENGTH"]

    response = client.post(
        "/hooks/generic",
        data=padded_alert(limit + extra),
        headers=auth() | {"Content-Type": "application/json"},
    )

    if status == 413:
        assert_refused(response, 413, connector_app)
    else:
        assert response.status_code == 202
        assert counts(connector_app)["delivery"] == 1


# -- 400 ------------------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"id": "disk-srv01", "status": ', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{'id': 'single-quotes'}", id="single-quotes"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[" * 100_000, id="nested-too-deep"),
    ],
)
def test_body_that_is_not_json_is_400(
    client: FlaskClient, connector_app: Flask, body: bytes
) -> None:
    response = client.post(
        "/hooks/generic", data=body, headers=auth() | {"Content-Type": "application/json"}
    )

    assert_refused(response, 400, connector_app)


@sqlite_only
@pytest.mark.parametrize(
    "body",
    [[ALERT], "disk full", 42, True],
    ids=["array", "string", "number", "boolean"],
)
def test_json_that_is_not_an_object_is_400(
    client: FlaskClient, connector_app: Flask, body: Any
) -> None:
    error = assert_refused(post(client, body), 400, connector_app)

    assert "JSON object" in error["message"]


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in ALERT.items() if k != key}


@sqlite_only
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(without("id"), "id", id="missing-id"),
        pytest.param(without("status"), "status", id="missing-status"),
        pytest.param(without("title"), "title", id="missing-title"),
        pytest.param(dict(ALERT, id=""), "id", id="empty-id"),
        pytest.param(dict(ALERT, id=True), "id", id="boolean-id"),
        pytest.param(dict(ALERT, id="x" * 256), "id", id="id-too-long"),
        pytest.param(dict(ALERT, title=None), "title", id="null-title"),
        pytest.param(dict(ALERT, status="exploded"), "status", id="unknown-status"),
        pytest.param(dict(ALERT, status=1), "status", id="numeric-status"),
        pytest.param(dict(ALERT, severity=5), "severity", id="numeric-severity"),
        pytest.param(dict(ALERT, severity="fatal"), "severity", id="unknown-severity"),
        pytest.param(dict(ALERT, properties=[1]), "properties", id="properties-list"),
        pytest.param(dict(ALERT, properties={"k": [1]}), "properties", id="property-list-value"),
        pytest.param(dict(ALERT, properties={"k": None}), "properties", id="property-null-value"),
        pytest.param(dict(ALERT, host="h" * 256), "host", id="host-too-long"),
        pytest.param(dict(ALERT, started_at="yesterday"), "started_at", id="bad-started-at"),
        pytest.param(dict(ALERT, occurred_at=1764000000), "occurred_at", id="epoch-occurred-at"),
        pytest.param(
            dict(ALERT, started_at="0001-01-01T00:00:00+14:00"),
            "started_at",
            id="started-at-before-year-1-in-utc",
        ),
        pytest.param(dict(ALERT, title="nul\u0000byte"), "title", id="nul-in-title"),
        pytest.param(dict(ALERT, message="lone \ud800"), "message", id="lone-surrogate"),
    ],
)
def test_invalid_field_is_400_naming_it(
    client: FlaskClient, connector_app: Flask, body: dict[str, Any], field: str
) -> None:
    error = assert_refused(post(client, body), 400, connector_app)

    assert list(error["details"]) == [field]
    assert field in error["message"]


@sqlite_only
def test_every_bad_field_is_named_at_once(client: FlaskClient, connector_app: Flask) -> None:
    body = {"status": "exploded", "severity": 5, "properties": [1]}

    error = assert_refused(post(client, body), 400, connector_app)

    assert sorted(error["details"]) == ["id", "properties", "severity", "status", "title"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param(dict(ALERT, id="bad", status="exploded"), "alerts.1.status", id="bad-status"),
        pytest.param(dict(ALERT, id="bad", severity=5), "alerts.1.severity", id="bad-severity"),
        pytest.param("not an alert", "alerts.1", id="not-an-object"),
    ],
)
def test_batch_with_one_bad_alert_stores_the_others_and_keeps_the_bad_one(
    client: FlaskClient, connector_app: Flask, bad: Any, field: str
) -> None:
    alerts = [dict(ALERT, id="good-1"), bad, dict(ALERT, id="good-2")]

    response = post(client, {"alerts": alerts})

    assert response.status_code == 202, response.text
    body = response.get_json()
    assert [(a["index"], a["disposition"]) for a in body["accepted"]] == [
        (0, "queued"),
        (2, "queued"),
    ]
    [rejected] = body["rejected"]
    assert (rejected["index"], rejected["disposition"]) == (1, "rejected")
    assert list(rejected["details"]) == [field]
    assert field in rejected["message"]
    assert counts(connector_app) == {"alert": 2, "alert_event": 2, "delivery": 2}
    kept = client.get(
        f"/api/v1/rejected-webhooks/{rejected['rejected_webhook_id']}", headers=auth(API_TOKEN)
    ).get_json()
    assert (kept["status"], kept["alert_index"], kept["request_id"]) == (
        202,
        1,
        body["request_id"],
    )
    assert json.loads(kept["body"]) == bad


@sqlite_only
def test_batch_whose_every_alert_is_bad_is_400_naming_every_field(
    client: FlaskClient, connector_app: Flask
) -> None:
    alerts = [dict(ALERT, status="exploded"), "not an alert"]

    error = assert_refused(post(client, {"alerts": alerts}), 400, connector_app)

    assert sorted(error["details"]) == ["alerts.0.status", "alerts.1"]


@sqlite_only
@pytest.mark.parametrize(
    "alerts", [[], {"id": "x"}, "x", None], ids=["empty", "object", "string", "null"]
)
def test_alerts_that_are_not_a_non_empty_list_are_400(
    client: FlaskClient, connector_app: Flask, alerts: Any
) -> None:
    error = assert_refused(post(client, {"alerts": alerts}), 400, connector_app)

    assert list(error["details"]) == ["alerts"]


@sqlite_only
def test_501_alerts_are_400(client: FlaskClient, connector_app: Flask) -> None:
    alerts = [dict(ALERT, id=f"a{n}") for n in range(501)]

    error = assert_refused(post(client, {"alerts": alerts}), 400, connector_app)

    assert list(error["details"]) == ["alerts"]
    assert "501" in error["message"]


# -- 503 ------------------------------------------------------------------------------------------


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["status"] == 503
    assert "retry" in error["message"]
    assert len(error["request_id"]) == 32


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 with nobody listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@sqlite_only
def test_unreachable_database_is_503_with_retry_after(
    connector_settings: dict[str, Any], refused_port: int
) -> None:
    settings = dict(
        connector_settings,
        DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{refused_port}/test",
    )
    app = create_app(settings)
    try:
        response = post(app.test_client(), ALERT)
    finally:
        app.extensions["connector"].dispose()

    assert_unavailable(response)


def test_commit_that_fails_is_503_and_leaves_nothing(
    client: FlaskClient, connector_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database takes the writes, then the COMMIT fails (server gone, disk error)."""
    import connector.pipeline.intake as intake

    dialect = connector_app.extensions["connector"].engine.dialect
    real_commit, real_ingest = dialect.do_commit, intake.ingest

    def commit_fails_once(dbapi_connection: Any) -> None:
        monkeypatch.setattr(dialect, "do_commit", real_commit)
        raise dialect.loaded_dbapi.OperationalError("could not commit: disk I/O error")

    def ingest_then_lose_the_commit(*args: Any, **kwargs: Any) -> Any:
        accepted = real_ingest(*args, **kwargs)
        monkeypatch.setattr(dialect, "do_commit", commit_fails_once)
        return accepted

    monkeypatch.setattr(intake, "ingest", ingest_then_lose_the_commit)

    assert_unavailable(post(client, ALERT))
    assert counts(connector_app) == NOTHING

    # The sender's retry lands once the database is back.
    monkeypatch.setattr(intake, "ingest", real_ingest)
    response = post(client, ALERT)
    assert response.status_code == 202
    assert response.get_json()["accepted"][0]["disposition"] == "queued"
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}


# -- a real server, concurrent senders ------------------------------------------------------------


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


def post_concurrently(url: str, bodies: list[Any]) -> list[requests.Response]:
    """POST every body at once, each from its own thread and connection."""
    start = threading.Barrier(len(bodies))

    def send(body: Any) -> requests.Response:
        start.wait(timeout=10)
        with requests.Session() as session:
            return session.post(f"{url}/hooks/generic", json=body, headers=auth(), timeout=60)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(ALERT, id="with-timestamps"),
        pytest.param({"id": "cpu-srv02", "status": "firing", "title": "CPU"}, id="no-timestamps"),
    ],
)
def test_ten_concurrent_copies_of_one_post_make_one_delivery(
    live_url: str, connector_app: Flask, body: dict[str, Any]
) -> None:
    responses = post_concurrently(live_url, [body] * 10)

    assert [r.status_code for r in responses] == [202] * 10
    accepted = [r.json()["accepted"][0] for r in responses]
    assert sorted(a["disposition"] for a in accepted) == ["duplicate"] * 9 + ["queued"]
    assert len({a["alert_id"] for a in accepted}) == 1
    assert len({a["event_id"] for a in accepted}) == 10
    assert counts(connector_app) == {"alert": 1, "alert_event": 10, "delivery": 1}


def test_concurrent_posts_of_different_alerts_are_all_queued(
    live_url: str, connector_app: Flask
) -> None:
    bodies = [dict(ALERT, id=f"disk-srv{n:02}") for n in range(10)]

    responses = post_concurrently(live_url, bodies)

    assert [r.status_code for r in responses] == [202] * 10
    assert {r.json()["accepted"][0]["disposition"] for r in responses} == {"queued"}
    assert counts(connector_app) == {"alert": 10, "alert_event": 10, "delivery": 10}


def test_chunked_body_over_the_limit_is_413(live_url: str, connector_app: Flask) -> None:
    """Without Content-Length the limit is enforced too, not by cutting the body at it."""
    limit = connector_app.config["MAX_CONTENT_LENGTH"]

    def body() -> Iterator[bytes]:  # a generator: Transfer-Encoding: chunked
        # A valid alert padded with whitespace: cut at the limit it would still parse.
        padded = padded_alert(limit + 1)
        for start in range(0, len(padded), 65536):
            yield padded[start : start + 65536]

    with requests.Session() as session:
        response = session.post(
            f"{live_url}/hooks/generic",
            data=body(),
            headers=auth() | {"Content-Type": "application/json"},
            timeout=30,
        )

    assert_refused(response, 413, connector_app)


def test_chunked_body_under_the_limit_is_accepted(live_url: str, connector_app: Flask) -> None:
    def body() -> Iterator[bytes]:
        yield json.dumps(ALERT).encode()
        yield b" " * 1024

    with requests.Session() as session:
        response = session.post(
            f"{live_url}/hooks/generic",
            data=body(),
            headers=auth() | {"Content-Type": "application/json"},
            timeout=30,
        )

    assert response.status_code == 202
    assert counts(connector_app) == {"alert": 1, "alert_event": 1, "delivery": 1}
