"""GET /readyz: the database reachable, its migrations current, a worker alive; each named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from connector import create_app
from connector.cli import prepare_database
from connector.persistence.db import head_revision
from connector.persistence.models import WorkerHeartbeat, utcnow
from tests import canaries

#: Nothing listens here; the password must never appear in an answer.
UNREACHABLE_DATABASE = (
    f"postgresql+psycopg://nobody:{canaries.DATABASE_PASSWORD}@127.0.0.1:1/absent"
)
HEARTBEAT_SECONDS = 2.0

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def connector_settings(connector_settings: dict[str, Any]) -> dict[str, Any]:
    return dict(connector_settings, WORKER_HEARTBEAT_SECONDS=HEARTBEAT_SECONDS)


def beat(app: Flask, worker_id: str, seconds_ago: float) -> None:
    """A worker's heartbeat row, as a worker writes it, `seconds_ago` old."""
    at = utcnow() - timedelta(seconds=seconds_ago)
    with app.extensions["connector"].transaction() as session:
        session.merge(WorkerHeartbeat(worker_id=worker_id, threads=3, started_at=at, beat_at=at))


def ready(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def test_with_a_live_worker_every_check_passes(client: FlaskClient, connector_app: Flask) -> None:
    beat(connector_app, "worker-a", seconds_ago=0.5)

    status, body = ready(client)

    assert status == 200
    assert body["status"] == "ready"
    assert body["failing"] == []
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"] == {
        "ok": True,
        "revision": head_revision(),
        "head": head_revision(),
    }
    assert body["checks"]["worker"] == {"ok": True, "alive": 1}


def test_no_worker_heartbeat_is_not_ready(client: FlaskClient) -> None:
    # The settings of these tests have WORKER_ENABLED false: still not ready, nothing delivers.
    status, body = ready(client)

    assert status == 503
    assert body["status"] == "not ready"
    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"]["ok"] is False
    assert body["checks"]["worker"]["alive"] == 0
    assert "no delivery worker beat in the last 6 s" in body["checks"]["worker"]["detail"]
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]


@sqlite_only
def test_a_worker_is_alive_for_three_heartbeats(client: FlaskClient, connector_app: Flask) -> None:
    beat(connector_app, "stale", seconds_ago=3 * HEARTBEAT_SECONDS + 5)
    assert ready(client)[1]["failing"] == ["worker"]

    beat(connector_app, "recent", seconds_ago=3 * HEARTBEAT_SECONDS - 2)
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["worker"] == {"ok": True, "alive": 1}


@sqlite_only
def test_a_database_behind_the_migrations_is_not_ready(
    client: FlaskClient, connector_app: Flask
) -> None:
    beat(connector_app, "worker-a", seconds_ago=0)
    with connector_app.extensions["connector"].engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0009'"))

    status, body = ready(client)

    assert status == 503
    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"]["revision"] == "0009"
    assert body["checks"]["migrations"]["head"] == head_revision()
    assert "connector db upgrade" in body["checks"]["migrations"]["detail"]


@sqlite_only
@pytest.mark.empty_database
def test_an_unmigrated_database_fails_migrations_and_worker(
    connector_settings: dict[str, Any],
) -> None:
    app = create_app(connector_settings)
    try:
        status, body = ready(app.test_client())
    finally:
        app.extensions["connector"].dispose()

    assert status == 503
    assert body["failing"] == ["migrations", "worker"]
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["revision"] is None
    assert body["checks"]["worker"]["ok"] is False


@pytest.fixture
def unreachable() -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": UNREACHABLE_DATABASE})
    yield app
    app.extensions["connector"].dispose()


def test_a_database_that_is_down_fails_every_check_and_says_no_secret(
    unreachable: Flask,
) -> None:
    response = unreachable.test_client().get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["database", "migrations", "worker"]
    assert body["checks"]["database"]["detail"] == "not reachable (OperationalError)"
    assert "not reachable" in body["checks"]["worker"]["detail"]
    text_ = response.get_data(as_text=True)
    for secret in (canaries.DATABASE_PASSWORD, "nobody", "127.0.0.1", "absent"):
        assert secret not in text_


def test_readyz_needs_no_token(connector_settings: dict[str, Any]) -> None:
    app = create_app(dict(connector_settings, METRICS_TOKEN=canaries.METRICS_TOKEN))
    try:
        prepare_database(app.extensions["connector"])
        beat(app, "worker-a", seconds_ago=0)
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        app.extensions["connector"].dispose()
