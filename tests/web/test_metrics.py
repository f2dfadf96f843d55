"""GET /metrics: the Prometheus text exposition, its counters, its database gauges and its token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from adapters.sandbox import ApiUser
from connector import create_app
from connector.cli import main, prepare_database
from connector.config import DEFAULTS
from connector.errors import ConfigError
from connector.persistence.models import ApiCall, Delivery, Integration, utcnow
from connector.web import metrics as metrics_module
from connector.wiring import make_worker
from tests import canaries
from tests.conftest import API_TOKEN, GENERIC_ALERT, HOOK_TOKEN

METRICS_TOKEN = canaries.METRICS_TOKEN
#: Nothing listens here: a database that is down.
UNREACHABLE_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/absent"

ALERT = GENERIC_ALERT

DATABASE_GAUGES = (
    "connector_deliveries",
    "connector_delivery_oldest_pending_seconds",
    "connector_dead_letters",
    "connector_autotask_api_calls_last_hour",
    "connector_open_tickets",
)

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Scrape:
    """One parsed answer of GET /metrics: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        """The sample's value; None when the scrape does not have it."""
        return self.samples.get((name, frozenset(labels.items())))

    def count(self, name: str, **labels: str) -> float:
        """A counter's value; 0 when the series does not exist yet."""
        return self.value(name, **labels) or 0.0

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(client: FlaskClient, **kwargs: Any) -> Scrape:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(response.get_data(as_text=True))


def post(
    client: FlaskClient, body: Any, *, source: str = "generic", token: str = HOOK_TOKEN
) -> Any:
    return client.post(f"/hooks/{source}", json=body, headers={"Authorization": f"Bearer {token}"})


# -- the exposition ------------------------------------------------------------------------------


def test_exposition_parses_and_starts_at_zero(client: FlaskClient) -> None:
    metrics = scrape(client)

    assert metrics.types["connector_webhooks"] == "counter"
    assert metrics.types["connector_webhook_alerts"] == "counter"
    for name in ("connector_database_up", *DATABASE_GAUGES):
        assert metrics.types[name] == "gauge"
    assert metrics.value("connector_database_up") == 1
    for state in ("pending", "in_progress", "done", "dead"):
        assert metrics.value("connector_deliveries", state=state) == 0
    assert metrics.value("connector_delivery_oldest_pending_seconds") == 0
    assert metrics.value("connector_dead_letters") == 0
    assert metrics.value("connector_open_tickets") == 0
    for status in ("2xx", "4xx", "5xx", "error"):
        value = metrics.value(
            "connector_autotask_api_calls_last_hour", integration="default", status=status
        )
        assert value == 0
    # Known sources are there from the start, so that rate() sees their first webhook.
    assert metrics.value("connector_webhooks_total", source="generic", status="202") == 0
    for disposition in ("queued", "duplicate", "dropped", "rejected"):
        value = metrics.value(
            "connector_webhook_alerts_total", source="alertmanager", disposition=disposition
        )
        assert value == 0
    assert metrics.types["connector_webhook_seconds"] == "histogram"
    assert metrics.types["connector_alert_to_ticket_seconds"] == "histogram"
    assert metrics.value("connector_webhook_seconds_count", source="generic") == 0
    # No creation-time series beside the counters and histograms.
    assert not any(name.endswith("_created") for name in metrics.names())


def test_webhooks_are_counted_by_source_status_and_disposition(client: FlaskClient) -> None:
    before = scrape(client)

    assert post(client, ALERT).status_code == 202  # queued
    assert post(client, ALERT).status_code == 202  # the same event again: duplicate
    assert post(client, dict(ALERT, id="other", tenant="switched-off")).status_code == 202
    assert post(client, {"alerts": [dict(ALERT, id="a"), dict(ALERT, id="b")]}).status_code == 202
    # One alert of a batch that cannot be read: the webhook is a 202, that alert "rejected".
    assert post(client, {"alerts": [dict(ALERT, id="c"), {"id": "no-status"}]}).status_code == 202
    assert post(client, {"id": "no-status"}).status_code == 400
    assert post(client, ALERT, token=canaries.WRONG_BEARER_TOKEN).status_code == 401
    assert post(client, ALERT, source="no-such-source").status_code == 404
    assert post(client, ALERT, source="x" * 300).status_code == 404

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.count(name, **labels) - before.count(name, **labels)

    assert grew("connector_webhooks_total", source="generic", status="202") == 5
    assert grew("connector_webhooks_total", source="generic", status="400") == 1
    assert grew("connector_webhooks_total", source="generic", status="401") == 1
    # Unknown sources share one label value, whatever path was posted to.
    assert grew("connector_webhooks_total", source="unknown", status="404") == 2
    assert "no-such-source" not in after.text and "x" * 300 not in after.text
    assert grew("connector_webhook_alerts_total", source="generic", disposition="queued") == 4
    assert grew("connector_webhook_alerts_total", source="generic", disposition="duplicate") == 1
    assert grew("connector_webhook_alerts_total", source="generic", disposition="dropped") == 1
    assert grew("connector_webhook_alerts_total", source="generic", disposition="rejected") == 1
    # The database agrees: four deliveries wait (the duplicate and the dropped have none).
    assert after.value("connector_deliveries", state="pending") == 4


def test_every_webhook_answer_is_timed_by_source(client: FlaskClient) -> None:
    before = scrape(client)

    assert post(client, ALERT).status_code == 202
    assert post(client, ALERT, token=canaries.WRONG_BEARER_TOKEN).status_code == 401
    assert post(client, ALERT, source="no-such-source").status_code == 404
    assert client.get("/healthz").status_code == 200  # not a webhook: not timed

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.count(name, **labels) - before.count(name, **labels)

    assert grew("connector_webhook_seconds_count", source="generic") == 2
    assert grew("connector_webhook_seconds_count", source="unknown") == 1
    assert grew("connector_webhook_seconds_bucket", source="generic", le="+Inf") == 2
    assert grew("connector_webhook_seconds_sum", source="generic") > 0
    # Buckets from a millisecond to minutes.
    assert after.value("connector_webhook_seconds_bucket", source="generic", le="0.001") is not None
    assert after.value("connector_webhook_seconds_bucket", source="generic", le="600.0") is not None


def test_a_created_ticket_observes_the_alert_to_ticket_latency(
    client: FlaskClient, connector_app: Flask
) -> None:
    services = connector_app.extensions["connector"]
    before = scrape(client)
    assert post(client, ALERT).status_code == 202

    assert make_worker(services).run_once() == 1  # the create
    created = scrape(client)
    assert post(client, dict(ALERT, status="resolved")).status_code == 202
    assert make_worker(services).run_once() == 1  # the clear: no create
    cleared = scrape(client)

    name = "connector_alert_to_ticket_seconds"
    assert created.count(f"{name}_count") - before.count(f"{name}_count") == 1
    assert created.count(f"{name}_sum") > before.count(f"{name}_sum")
    assert cleared.count(f"{name}_count") == created.count(f"{name}_count")


def test_deliveries_api_calls_and_tickets_after_a_worker_pass(
    client: FlaskClient, connector_app: Flask
) -> None:
    services = connector_app.extensions["connector"]
    assert post(client, ALERT).status_code == 202
    with services.transaction() as session:
        # The delivery has been due for two minutes: no worker took it.
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(minutes=2)))

    waiting = scrape(client)

    assert waiting.value("connector_deliveries", state="pending") == 1
    assert waiting.value("connector_deliveries", state="done") == 0
    assert (waiting.value("connector_delivery_oldest_pending_seconds") or 0) >= 120
    assert waiting.value("connector_open_tickets") == 0

    assert make_worker(services).run_once() == 1
    done = scrape(client)

    assert done.value("connector_deliveries", state="pending") == 0
    assert done.value("connector_deliveries", state="done") == 1
    assert done.value("connector_delivery_oldest_pending_seconds") == 0
    assert done.value("connector_open_tickets") == 1
    calls = done.value(
        "connector_autotask_api_calls_last_hour", integration="default", status="2xx"
    )
    assert calls is not None and calls >= 1
    assert done.value("connector_dead_letters") == 0


def test_a_pending_delivery_not_yet_due_is_not_waiting(
    client: FlaskClient, connector_app: Flask
) -> None:
    assert post(client, ALERT).status_code == 202
    with connector_app.extensions["connector"].transaction() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow() + timedelta(minutes=5)))

    metrics = scrape(client)

    assert metrics.value("connector_deliveries", state="pending") == 1
    assert metrics.value("connector_delivery_oldest_pending_seconds") == 0


def test_dead_letters_are_counted(client: FlaskClient, connector_app: Flask) -> None:
    assert post(client, ALERT).status_code == 202
    with connector_app.extensions["connector"].transaction() as session:
        session.execute(update(Delivery).values(state="dead", outcome="rejected"))

    metrics = scrape(client)

    assert metrics.value("connector_dead_letters") == 1
    assert metrics.value("connector_deliveries", state="dead") == 1
    assert metrics.value("connector_deliveries", state="pending") == 0


def test_api_calls_of_the_last_hour_by_status_class(
    client: FlaskClient, connector_app: Flask
) -> None:
    now = utcnow()
    with connector_app.extensions["connector"].transaction() as session:
        integration_id = session.scalar(select(Integration.id))
        for status, age in [(200, 1), (201, 59), (429, 5), (500, 10), (None, 2), (200, 61)]:
            session.add(
                ApiCall(
                    integration_id=integration_id,
                    at=now - timedelta(minutes=age),
                    method="POST",
                    entity="Tickets",
                    http_status=status,
                    execution_ms=12.0,
                )
            )

    metrics = scrape(client)

    def calls(status: str) -> float | None:
        return metrics.value(
            "connector_autotask_api_calls_last_hour", integration="default", status=status
        )

    # The call of 61 minutes ago is out of the hour.
    assert (calls("2xx"), calls("4xx"), calls("5xx"), calls("error")) == (2, 1, 1, 1)


@sqlite_only
def test_a_failure_to_count_never_changes_the_answer(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(response: Any) -> None:
        raise RuntimeError("counter broken")

    monkeypatch.setattr(metrics_module, "_count", broken)

    response = post(client, ALERT)

    assert response.status_code == 202
    assert response.get_json()["accepted"][0]["disposition"] == "queued"
    assert "metrics.webhook_not_counted" in caplog.text


# -- the database down ---------------------------------------------------------------------------


def test_a_database_that_is_down_answers_200_with_database_up_0() -> None:
    app = create_app({"DATABASE_URL": UNREACHABLE_DATABASE})
    try:
        client = app.test_client()
        # No credentials, an unknown source: the 401 of a bad token (issue 15).
        assert client.post("/hooks/no-such-source", json=ALERT).status_code == 401

        metrics = scrape(client)

        assert metrics.value("connector_database_up") == 0
        for name in DATABASE_GAUGES:
            assert name not in metrics.types
        # The process's own counters are still there.
        assert metrics.value("connector_webhooks_total", source="unknown", status="401") == 1
    finally:
        app.extensions["connector"].dispose()


def test_a_database_error_during_the_scrape_is_database_up_0(
    client: FlaskClient, connector_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post(client, ALERT).status_code == 202

    def broken() -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(connector_app.extensions["connector"], "sessions", broken)
    metrics = scrape(client)

    assert metrics.value("connector_database_up") == 0
    assert "connector_deliveries" not in metrics.types
    assert metrics.value("connector_webhooks_total", source="generic", status="202") == 1

    monkeypatch.undo()
    assert scrape(client).value("connector_database_up") == 1


@sqlite_only
@pytest.mark.empty_database
def test_an_unmigrated_database_is_database_up_0(connector_settings: dict[str, Any]) -> None:
    app = create_app(connector_settings)
    try:
        assert scrape(app.test_client()).value("connector_database_up") == 0
    finally:
        app.extensions["connector"].dispose()


# -- the token -----------------------------------------------------------------------------------


@pytest.fixture
def guarded(connector_settings: dict[str, Any]) -> Iterator[FlaskClient]:
    """A connector whose /metrics needs METRICS_TOKEN."""
    app = create_app(dict(connector_settings, METRICS_TOKEN=METRICS_TOKEN))
    prepare_database(app.extensions["connector"])
    yield app.test_client()
    app.extensions["connector"].dispose()


@sqlite_only
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
        f"Bearer {API_TOKEN}",
        "Bearer ",
    ],
)
def test_with_a_metrics_token_a_scrape_without_it_is_401(
    guarded: FlaskClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = guarded.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    error = response.get_json()["error"]
    assert error["status"] == 401
    assert "metrics token" in error["message"]
    # The token is never in the URL: a ?token= is not read.
    assert guarded.get(f"/metrics?token={METRICS_TOKEN}").status_code == 401


@sqlite_only
def test_with_a_metrics_token_a_scrape_with_it_is_200(guarded: FlaskClient) -> None:
    metrics = scrape(guarded, headers={"Authorization": f"bearer  {METRICS_TOKEN} "})

    assert metrics.value("connector_database_up") == 1


@sqlite_only
def test_without_a_metrics_token_any_scrape_is_200(client: FlaskClient) -> None:
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 200


@pytest.mark.parametrize("token", [42, ["x"], " padded"])
def test_a_metrics_token_that_is_no_plain_string_is_refused(token: Any) -> None:
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app({"METRICS_TOKEN": token})


def test_connector_config_hides_the_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in DEFAULTS:
        monkeypatch.delenv(f"CONNECTOR_{key}", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_METRICS_TOKEN", METRICS_TOKEN)

    result = CliRunner().invoke(main, ["config"])

    assert result.exit_code == 0, result.output
    assert "METRICS_TOKEN = <secret>" in result.output
    assert METRICS_TOKEN not in result.output


# -- no secret, no shared state ------------------------------------------------------------------


def test_no_secret_appears_in_the_output(
    guarded: FlaskClient,
    connector_settings: dict[str, Any],
    api_user: ApiUser,
    secret_key: str,
) -> None:
    assert post(guarded, ALERT).status_code == 202
    assert post(guarded, ALERT, token=f"presented-{HOOK_TOKEN}").status_code == 401

    text = scrape(guarded, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text

    assert "connector_webhooks_total" in text
    for secret in (
        METRICS_TOKEN,
        HOOK_TOKEN,
        API_TOKEN,
        api_user.secret,
        api_user.integration_code,
        api_user.username,
        secret_key,
        str(connector_settings["DATABASE_URL"]),
    ):
        assert secret not in text


def test_two_apps_in_one_process_count_apart(tmp_path: Path) -> None:
    first = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/first.sqlite"})
    second = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/second.sqlite"})
    try:
        assert first.test_client().post("/hooks/nope", json={}).status_code == 401

        first_count = scrape(first.test_client()).count(
            "connector_webhooks_total", source="unknown", status="401"
        )
        second_count = scrape(second.test_client()).count(
            "connector_webhooks_total", source="unknown", status="401"
        )

        assert (first_count, second_count) == (1, 0)
    finally:
        first.extensions["connector"].dispose()
        second.extensions["connector"].dispose()


MULTIPROCESS_SCRIPT = """
import json, os, sys
from connector import create_app
from connector.pipeline.latency import observe_alert_to_ticket

app = create_app({"DATABASE_URL": sys.argv[1]})
client = app.test_client()
client.post("/hooks/nope", json={})
if sys.argv[2] == "worker":
    observe_alert_to_ticket(2.0)
else:
    print(client.get("/metrics").get_data(as_text=True))
app.extensions["connector"].dispose()
"""


def test_in_multiprocess_mode_a_scrape_adds_up_every_process(tmp_path: Path) -> None:
    # As under `connector run`/`serve`: each process writes to the directory, any scrape sums.
    import os
    import subprocess
    import sys

    directory = tmp_path / "metrics"
    directory.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    url = f"sqlite:///{tmp_path}/connector.sqlite"

    def process(role: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_SCRIPT, url, role],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    process("worker")
    process("web")
    metrics = Scrape(process("web"))

    assert metrics.value("connector_webhooks_total", source="unknown", status="401") == 3
    assert metrics.value("connector_webhook_seconds_count", source="unknown") == 3
    assert metrics.value("connector_alert_to_ticket_seconds_count") == 1
    assert metrics.value("connector_alert_to_ticket_seconds_sum") == 2.0
    assert "connector_database_up" in metrics.types
    assert not any(name.endswith("_created") for name in metrics.names())
