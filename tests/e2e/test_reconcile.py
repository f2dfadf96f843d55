"""R13: resolved notifications lost on the way; reconciliation completes those tickets, and
none whose alert still fires.

The real Alertmanager notifies the connector through a proxy that drops the resolved
notifications of 5 % of the alerts (answering 200, as a lossy middlebox would, so Alertmanager
does not retry). The connector's worker asks Alertmanager's API every second which alerts it
has (`source_options.alertmanager.api_urls`) and, after a 2 s grace, resolves those it no longer
lists. Alerts that keep firing keep their tickets open however many reconciliations pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.wrappers import Request, Response

from adapters.sandbox import Sandbox, SandboxServer
from connector.persistence.models import SchedulerRun
from connector.pipeline.reconcile import ACTOR
from tests.e2e.harness import Connector, wait_until
from tests.e2e.test_alertmanager import Alertmanager, alertmanager_installed  # noqa: F401
from tests.local_http import serving

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

#: Alerts pushed; of them KEEP_FIRING are never resolved and DROPPED lose their resolve.
ALERTS = 40
KEEP_FIRING = 4
DROPPED = 2  # 5 % of ALERTS
#: Reconciliation in this test: every second, after 2 s missing.
EVERY, GRACE = 1.0, 2.0


def name_of(index: int) -> str:
    """The alertname of alert `index` (one group per alert)."""
    return f"ReconcileE2E{index:02d}"


@dataclass
class DroppingProxy:
    """Forwards Alertmanager's webhooks to the connector, without the resolves of `drop`."""

    drop: set[str]
    target: str = ""
    dropped: list[str] = field(default_factory=list)
    forwarded: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_json()
        kept = []
        for alert in body["alerts"]:
            if alert["status"] == "resolved" and alert["labels"]["alertname"] in self.drop:
                with self.lock:
                    self.dropped.append(alert["labels"]["alertname"])
                continue
            kept.append(alert)
        if not kept:
            return Response("{}", status=200)(environ, start_response)
        answer = requests.post(
            f"{self.target}/hooks/alertmanager",
            json={**body, "alerts": kept},
            headers={"Authorization": request.headers.get("Authorization", "")},
            timeout=30,
        )
        with self.lock:
            self.forwarded.append(answer.status_code)
        return Response(answer.content, status=answer.status_code)(environ, start_response)


@pytest.fixture
def proxy() -> Iterator[tuple[DroppingProxy, str]]:
    """The lossy proxy on a free port, and its URL."""
    app = DroppingProxy({name_of(index) for index in range(KEEP_FIRING, KEEP_FIRING + DROPPED)})
    with serving(app) as url:
        yield app, url


@pytest.fixture
def alertmanager(proxy: tuple[DroppingProxy, str], tmp_path: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager notifying through the proxy."""
    manager = Alertmanager("am-r13", tmp_path, proxy[1])
    try:
        manager.start()
        yield manager
    finally:
        manager.stop()


@pytest.fixture
def integration_config(
    integration_config: dict[str, object], alertmanager: Alertmanager
) -> dict[str, object]:
    """The test integration, asking that Alertmanager which alerts it has."""
    options = {"alertmanager": {"api_urls": [alertmanager.url]}}
    return {**integration_config, "source_options": options}


@pytest.fixture
def connector_settings(connector_settings: dict[str, object]) -> dict[str, object]:
    """Reconciliation every second, after a 2 s grace."""
    return {
        **connector_settings,
        "RECONCILE_EVERY_SECONDS": EVERY,
        "RECONCILE_GRACE_SECONDS": GRACE,
    }


def push(manager: Alertmanager, indexes: range, start: datetime, end: datetime | None) -> None:
    """POST the alerts to Alertmanager's API, as Prometheus does (firing, or ended at `end`)."""
    alerts = []
    for index in indexes:
        alert: dict[str, Any] = {
            "labels": {"alertname": name_of(index), "instance": "srv01:9100"},
            "annotations": {"summary": f"R13 alert {index}"},
            "startsAt": start.isoformat(),
        }
        if end is not None:
            alert["endsAt"] = end.isoformat()
        alerts.append(alert)
    answer = requests.post(f"{manager.url}/api/v2/alerts", json=alerts, timeout=30)
    assert answer.status_code == 200, answer.text


def reconcile_runs(service: Connector) -> int:
    """How many runs of the reconcile job have finished."""
    with service.services.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(SchedulerRun)
            .where(SchedulerRun.job == "reconcile", SchedulerRun.finished_at.is_not(None))
        )
    return int(count or 0)


def tickets(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The sandbox's tickets by title."""
    return {ticket["title"]: ticket for ticket in sandbox.tickets_with_notes()}


def test_reconciliation_completes_tickets_whose_resolve_was_lost(
    connector_settings: dict[str, object],
    sandbox: Sandbox,
    sandbox_server: SandboxServer,
    alertmanager: Alertmanager,
    proxy: tuple[DroppingProxy, str],
    tmp_path: Path,
) -> None:
    """R13 on PostgreSQL, with the real Alertmanager."""
    lossy, _ = proxy
    service = Connector(connector_settings, tmp_path)
    try:
        service.start_web()
        lossy.target = service.base
        service.start_worker()
        start = datetime.now(UTC) - timedelta(minutes=5)
        push(alertmanager, range(ALERTS), start, None)
        wait_until(lambda: len(tickets(sandbox)) >= ALERTS, 60, f"{ALERTS} tickets")

        push(alertmanager, range(KEEP_FIRING, ALERTS), start, datetime.now(UTC))
        resolved = {f"R13 alert {index}" for index in range(KEEP_FIRING, ALERTS)}

        def all_resolved_completed() -> bool:
            found = tickets(sandbox)
            return all(found[title]["status"] == 5 for title in resolved)

        wait_until(all_resolved_completed, 90, "every resolved alert's ticket to complete")
        # More reconciliations than the grace spans pass: the firing alerts' tickets stay open.
        runs_then = reconcile_runs(service)
        more = int(GRACE / EVERY) + 3
        wait_until(lambda: reconcile_runs(service) >= runs_then + more, 60, f"{more} more runs")
        service.drain(timeout=60)
        dead = service.deliveries_by_state().get("dead", 0)
    finally:
        service.stop()

    found = tickets(sandbox)
    firing = {f"R13 alert {index}" for index in range(KEEP_FIRING)}
    lost = {f"R13 alert {index}" for index in range(KEEP_FIRING, KEEP_FIRING + DROPPED)}
    reconciled = {
        title
        for title, ticket in found.items()
        if any(ACTOR in note.get("description", "") for note in ticket["notes"])
        or ACTOR in (ticket.get("resolution") or "")
    }
    wrong = sum(found[t]["status"] != 5 for t in resolved if t in found) + sum(
        found[t]["status"] == 5 for t in firing if t in found
    )
    print(
        f"R13: attempted {ALERTS} / acknowledged {len(found)} tickets / lost"
        f" {ALERTS - len(found) + wrong} / duplicated"
        f" {len(sandbox.tickets_with_notes()) - len(found)} /"
        f" dead-lettered {dead} ({len(resolved)} resolved at the source, resolves dropped"
        f" {len(set(lossy.dropped))}, reconciled {len(reconciled)}, firing and open"
        f" {sum(found[t]['status'] != 5 for t in firing)} of {len(firing)})"
    )
    assert dead == 0
    assert len(sandbox.tickets_with_notes()) == ALERTS
    assert len(found) == ALERTS
    assert set(lossy.dropped) == {name_of(i) for i in range(KEEP_FIRING, KEEP_FIRING + DROPPED)}
    assert all(found[title]["status"] == 5 for title in resolved)
    assert all(found[title]["status"] != 5 for title in firing)
    assert reconciled == lost
    assert alertmanager.errors() == []
