"""Reconciliation with Alertmanager's alert list: what is resolved, and what never is.

A small HTTP server stands in for Alertmanager's `GET /api/v2/alerts` (the real Alertmanager
runs in tests/e2e/test_reconcile.py); the connector's side is real: webhooks through the app,
the reconcile job, its ingested clears and their deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from connector.persistence.models import Alert, AlertEvent, Delivery
from connector.pipeline.reconcile import ACTOR, reconcile_sources, shown
from tests.conftest import HOOK_TOKEN
from tests.local_http import serving

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


@dataclass
class FakeAlertmanager:
    """Answers GET /api/v2/alerts with `listed` (fingerprints), or with `status` when not 200."""

    listed: set[str] = field(default_factory=set)
    status: int = 200
    asked: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.asked.append(request.full_path)
        if self.status != 200:
            return Response("broken", status=self.status)(environ, start_response)
        body = [
            {"fingerprint": fp, "labels": {"alertname": fp}, "status": {"state": "active"}}
            for fp in sorted(self.listed)
        ]
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


@pytest.fixture
def alertmanager() -> Iterator[tuple[FakeAlertmanager, str]]:
    """The stand-in Alertmanager on a free port, and its base URL."""
    app = FakeAlertmanager()
    with serving(app) as url:
        yield app, url


@pytest.fixture
def integration_config(
    integration_config: dict[str, object], alertmanager: tuple[FakeAlertmanager, str]
) -> dict[str, object]:
    """The test integration, asking the stand-in Alertmanager."""
    return {
        **integration_config,
        "source_options": {"alertmanager": {"api_urls": [alertmanager[1]]}},
    }


def fire(client: FlaskClient, fingerprint: str, starts: datetime, status: str = "firing") -> None:
    """One Alertmanager webhook about one alert."""
    alert = {
        "status": status,
        "labels": {"alertname": fingerprint, "severity": "critical"},
        "annotations": {"summary": f"{fingerprint} fires"},
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(minutes=1)).isoformat()
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    answer = client.post(
        "/hooks/alertmanager",
        json={"version": "4", "status": status, "receiver": "autotask", "alerts": [alert]},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)


def alert_states(app: Flask) -> dict[str, tuple[str, bool]]:
    """Per fingerprint: the alert's status and whether it is marked missing."""
    with app.extensions["connector"].transaction() as session:
        return {
            alert.fingerprint: (alert.status, alert.missing_since is not None)
            for alert in session.scalars(select(Alert))
        }


def reconciling_clears(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    """The clears reconciliation ingested: (fingerprint, event payload)."""
    with app.extensions["connector"].transaction() as session:
        rows = session.execute(
            select(Alert.fingerprint, AlertEvent.payload, AlertEvent.disposition)
            .join(AlertEvent, AlertEvent.alert_id == Alert.id)
            .where(AlertEvent.status == "cleared")
        ).all()
    return [(fp, payload) for fp, payload, _ in rows if payload.get("actor") == ACTOR]


def test_only_alerts_missing_for_the_grace_period_are_resolved(
    connector_app: Flask, client: FlaskClient, alertmanager: tuple[FakeAlertmanager, str]
) -> None:
    """Listed: untouched; missing: marked, then resolved after the grace, with a note why."""
    fake, url = alertmanager
    services = connector_app.extensions["connector"]
    services.settings["RECONCILE_GRACE_SECONDS"] = GRACE.total_seconds()
    for name in ("still-fires", "resolve-lost", "comes-back"):
        fire(client, name, T0 - timedelta(hours=1))
    fake.listed = {"still-fires"}

    assert reconcile_sources(services, T0) == {"1/alertmanager": 0}
    assert alert_states(connector_app) == {
        "still-fires": ("active", False),
        "resolve-lost": ("active", True),
        "comes-back": ("active", True),
    }
    fake.listed = {"still-fires", "comes-back"}
    assert reconcile_sources(services, T0 + GRACE) == {"1/alertmanager": 1}
    assert alert_states(connector_app) == {
        "still-fires": ("active", False),
        "resolve-lost": ("cleared", False),
        "comes-back": ("active", False),
    }
    clears = reconciling_clears(connector_app)
    assert [fp for fp, _ in clears] == ["resolve-lost"]
    assert f"asked: {url}/api/v2/alerts;" in clears[0][1]["note"]
    assert (
        fake.asked[-1] == "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
    )
    with services.transaction() as session:
        queued = session.scalars(select(Delivery.dedupe_key)).all()
    assert sum(key.startswith("cleared:") for key in queued) == 1


@pytest.mark.parametrize("status", [500, 404, 302])
def test_a_source_that_cannot_be_asked_resolves_nothing(
    connector_app: Flask,
    client: FlaskClient,
    alertmanager: tuple[FakeAlertmanager, str],
    status: int,
) -> None:
    """An error answer (or a redirect, not followed) is no word that the alert is gone."""
    fake, _ = alertmanager
    services = connector_app.extensions["connector"]
    fire(client, "fires", T0 - timedelta(hours=1))
    fake.status = status
    for moment in (T0, T0 + timedelta(hours=2)):
        assert reconcile_sources(services, moment) == {}
    assert alert_states(connector_app) == {"fires": ("active", False)}


def test_a_refire_after_a_reconciled_clear_opens_again_and_the_lost_resolve_changes_nothing(
    connector_app: Flask, client: FlaskClient, alertmanager: tuple[FakeAlertmanager, str]
) -> None:
    """The clear is stamped just after the alert's newest event, not at the time of asking."""
    services = connector_app.extensions["connector"]
    services.settings["RECONCILE_GRACE_SECONDS"] = 0.0
    started = T0 - timedelta(hours=1)
    fire(client, "flaps", started)
    reconcile_sources(services, T0)
    reconcile_sources(services, T0 + timedelta(seconds=1))
    assert alert_states(connector_app)["flaps"] == ("cleared", False)

    # The lost resolve arrives after all (ended a minute after it started): nothing to do.
    fire(client, "flaps", started, status="resolved")
    # A genuine re-fire that started before the reconciliation ran is a new firing.
    fire(client, "flaps", started + timedelta(minutes=30))
    assert alert_states(connector_app)["flaps"] == ("active", False)


def test_shown_urls_carry_no_login_and_no_query() -> None:
    """What a note or a log line shows of an Alertmanager's address."""
    assert shown("https://am:s3cret@am.example:9093/api/v2/alerts?active=true") == (
        "https://am.example:9093/api/v2/alerts"
    )
