"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) → connector → sandbox.

Alertmanager processes on free 127.0.0.1 ports (never :9093, where the Debian package may run its
own daemon) notify the connector's `/hooks/alertmanager` with the hook token, as a customer would
configure it; alerts are pushed with `amtool alert add`. Alertmanager re-sends a still-firing group
every `repeat_interval` and each Alertmanager of an HA pair notifies on its own: every alert must
still be exactly one ticket, in the tenant's company with the severity's priority, completed once
Alertmanager sends it resolved.

`make test-deps` installs the package; without it these tests are skipped, or fail in CI
(CONNECTOR_CI=1, set by .ci/run).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from adapters.sandbox import Sandbox
from connector.persistence.models import AlertEvent
from tests.conftest import HOOK_TOKEN, IN_CI, cannot_run
from tests.e2e.harness import Connector, free_port, wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")

pytestmark = [
    pytest.mark.e2e,
    # One database is enough here: what is under test is Alertmanager's side of the pipeline.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

#: The integration's companies (tests/conftest.py integration_config).
DEFAULT_COMPANY = 29683414
FABRIKAM = 29683415
NORTHWIND = 29683416

#: Alertmanager's timers, as short as its configuration allows (durations must be > 0); a firing
#: group is re-sent every repeat_interval, checked every group_interval.
GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = "1s", "1s", "2s"


@dataclass(frozen=True)
class PushedAlert:
    """An alert as `amtool alert add` pushes it, and the ticket it must become."""

    labels: dict[str, str]
    summary: str
    company: int
    priority: int

    def amtool_args(self) -> list[str]:
        return [f"{name}={value}" for name, value in self.labels.items()] + [
            f"--annotation=summary={self.summary}",
            f"--annotation=description=pushed by the e2e test: {self.summary}",
        ]


ALERTS = [
    # Two alerts of one group (alertname + instance): one webhook carries both.
    PushedAlert(
        {
            "alertname": "NodeFilesystemAlmostOutOfSpace",
            "instance": "srv01:9100",
            "mountpoint": "/",
            "severity": "critical",
            "tenant": "fabrikam",
        },
        "AM e2e: / almost full on srv01",
        FABRIKAM,
        4,
    ),
    PushedAlert(
        {
            "alertname": "NodeFilesystemAlmostOutOfSpace",
            "instance": "srv01:9100",
            "mountpoint": "/var",
            "severity": "warning",
            "tenant": "fabrikam",
        },
        "AM e2e: /var almost full on srv01",
        FABRIKAM,
        2,
    ),
    PushedAlert(
        {
            "alertname": "HostHighCpuLoad",
            "instance": "db01:9100",
            "severity": "warning",
            "tenant": "northwind",
        },
        "AM e2e: CPU load high on db01",
        NORTHWIND,
        2,
    ),
    # The tenant in the `customer` label.
    PushedAlert(
        {
            "alertname": "HostClockSkew",
            "instance": "db02:9100",
            "severity": "info",
            "customer": "northwind",
        },
        "AM e2e: clock skew on db02",
        NORTHWIND,
        3,
    ),
    # A tenant without a mapping: the default company.
    PushedAlert(
        {
            "alertname": "ProbeFailure",
            "instance": "https://shop.unmapped.example/health",
            "severity": "critical",
            "tenant": "unmapped-customer",
        },
        "AM e2e: probe of shop.unmapped.example failed",
        DEFAULT_COMPANY,
        4,
    ),
]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Alertmanager:
    """One `prometheus-alertmanager` process whose only receiver is the connector's webhook."""

    def __init__(self, name: str, directory: Path, hook_url: str) -> None:
        self.name = name
        self.directory = directory / name
        self.directory.mkdir()
        self.external_url = f"http://{name}.alertmanager.test:9093"
        self.log_path = directory / f"{name}.log"
        self.config_path = self.directory / "alertmanager.yml"
        # JSON is YAML: Alertmanager reads it as its configuration file.
        config = {
            "route": {
                "receiver": "autotask",
                "group_by": ["alertname", "instance"],
                "group_wait": GROUP_WAIT,
                "group_interval": GROUP_INTERVAL,
                "repeat_interval": REPEAT_INTERVAL,
            },
            "receivers": [
                {
                    "name": "autotask",
                    "webhook_configs": [
                        {
                            "url": hook_url,
                            "send_resolved": True,
                            "max_alerts": 500,
                            "http_config": {"authorization": {"credentials": HOOK_TOKEN}},
                        }
                    ],
                }
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        """Start on a free port (another, should one be taken meanwhile) and wait until ready."""
        for _ in range(3):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        str(ALERTMANAGER),
                        f"--config.file={self.config_path}",
                        f"--storage.path={self.directory / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--cluster.listen-address=",  # no HA gossip: each one notifies alone
                        f"--web.external-url={self.external_url}",
                        "--log.level=debug",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return
        raise AssertionError(f"{self.name} did not start: see {self.log_path}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def add(self, alert: PushedAlert, start: datetime, end: datetime | None = None) -> None:
        """`amtool alert add`, with the rule's start (as Prometheus sends it) and an end."""
        command = [
            str(AMTOOL),
            f"--alertmanager.url={self.url}",
            "alert",
            "add",
            *alert.amtool_args(),
            f"--start={rfc3339(start)}",
        ]
        if end is not None:
            command.append(f"--end={rfc3339(end)}")
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (command, result.stdout, result.stderr)

    def errors(self) -> list[str]:
        """Log lines at level error (a failed notification is one)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if "level=error" in line]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(autouse=True)
def alertmanager_installed() -> None:
    """Skip without Alertmanager and amtool, or fail in CI (CONNECTOR_CI), which must run these."""
    if not (ALERTMANAGER and AMTOOL):
        cannot_run(
            "prometheus-alertmanager (Alertmanager and amtool) is not installed:"
            " run `make test-deps` as root",
            required=IN_CI,
        )


def shows_logs_on_failure(test: Callable[..., None]) -> Callable[..., None]:
    """On failure, print every process log of the test (Alertmanagers, web, workers)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            test(*args, **kwargs)
        except BaseException:
            for log in sorted(Path(kwargs["tmp_path"]).glob("*.log")):
                print(f"===== {log.name} =====")
                print(log.read_text(encoding="utf-8", errors="replace")[-20_000:])
            raise

    return run


@pytest.fixture
def alertmanagers(connector: Connector, tmp_path: Path) -> Iterator[Callable[[str], Alertmanager]]:
    """Start Alertmanagers notifying the connector; every one is stopped at teardown."""
    started: list[Alertmanager] = []

    def start(name: str) -> Alertmanager:
        manager = Alertmanager(name, tmp_path, f"{connector.base}/hooks/alertmanager")
        started.append(manager)
        manager.start()
        return manager

    try:
        yield start
    finally:
        for manager in started:
            manager.stop()


def events(connector: Connector) -> list[dict[str, Any]]:
    """Every webhook alert the connector recorded: the normalized alert plus its disposition."""
    with connector.services.transaction() as session:
        rows = session.scalars(select(AlertEvent).order_by(AlertEvent.id)).all()
        return [dict(row.payload, disposition=row.disposition) for row in rows]


def tickets_by_title(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for ticket in sandbox.tickets_with_notes():
        found.setdefault(ticket["title"], []).append(ticket)
    return found


def ticket_creates(sandbox: Sandbox) -> int:
    """Successful ticket creates the sandbox answered (REST POST …/Tickets)."""
    return sum(
        1
        for call in sandbox.calls()
        if call.method == "POST"
        and call.status == 200
        and call.path.split("?")[0].rstrip("/").lower().endswith("/tickets")
    )


def assert_one_ticket_per_alert(sandbox: Sandbox, status: int) -> None:
    """Exactly one ticket per pushed alert: mapped company, mapped priority, `status`."""
    found = tickets_by_title(sandbox)
    assert sorted(found) == sorted(a.summary for a in ALERTS), sorted(found)
    for alert in ALERTS:
        (ticket,) = found[alert.summary]
        assert (ticket["companyID"], ticket["priority"], ticket["status"]) == (
            alert.company,
            alert.priority,
            status,
        ), alert.summary
    assert ticket_creates(sandbox) == len(ALERTS)


def firing_counts(connector: Connector, by: str = "title") -> dict[str, int]:
    """How many firing webhooks arrived per alert (or per sending Alertmanager)."""
    counts: dict[str, int] = {}
    for event in events(connector):
        if event["status"] == "active":
            key = event["title"] if by == "title" else event["properties"]["externalURL"]
            counts[key] = counts.get(key, 0) + 1
    return counts


@shows_logs_on_failure
def test_alertmanager_alerts_become_one_ticket_each_repeats_change_nothing_resolved_completes(
    connector: Connector,
    sandbox: Sandbox,
    alertmanagers: Callable[[str], Alertmanager],
    tmp_path: Path,
) -> None:
    manager = alertmanagers("am-1")
    start = datetime.now(UTC) - timedelta(minutes=5)  # when the rule began to fire
    for alert in ALERTS:
        manager.add(alert, start)

    # (a) One ticket per alert, in the tenant's company, with the severity's priority.
    wait_until(lambda: len(sandbox.tickets_with_notes()) >= len(ALERTS), 30, "the tickets")
    connector.drain(timeout=30)
    assert_one_ticket_per_alert(sandbox, status=1)

    # (b) Still firing (re-pushed as Prometheus re-sends every evaluation): Alertmanager re-sends
    # each group every repeat_interval. Wait for 3 webhooks of every alert.
    last_push = time.monotonic()

    def repeated() -> bool:
        nonlocal last_push
        if time.monotonic() - last_push >= 1:
            for alert in ALERTS:
                manager.add(alert, start)
            last_push = time.monotonic()
        counts = firing_counts(connector)
        return len(counts) == len(ALERTS) and min(counts.values()) >= 3

    wait_until(repeated, 40, "Alertmanager to re-send every firing alert twice")
    connector.drain(timeout=30)
    assert_one_ticket_per_alert(sandbox, status=1)
    assert all(not t["notes"] for t in sandbox.tickets_with_notes())  # no note per repeat
    assert connector.deliveries_by_state() == {"done": len(ALERTS)}
    dispositions = [e["disposition"] for e in events(connector)]
    assert dispositions.count("queued") == len(ALERTS)
    assert set(dispositions) == {"queued", "duplicate"}

    # (c) Resolved: an end in the past; Alertmanager sends them resolved, the tickets complete.
    end = datetime.now(UTC)
    for alert in ALERTS:
        manager.add(alert, start, end)
    wait_until(
        lambda: all(t["status"] == 5 for t in sandbox.tickets_with_notes()),
        30,
        "the tickets to be completed",
    )
    connector.drain(timeout=30)
    assert_one_ticket_per_alert(sandbox, status=5)
    assert connector.deliveries_by_state() == {"done": 2 * len(ALERTS)}
    cleared = [e for e in events(connector) if e["status"] == "cleared"]
    assert {e["occurred_at"] for e in cleared} == {end.replace(microsecond=0).isoformat()}
    assert manager.errors() == []


@shows_logs_on_failure
def test_two_alertmanagers_sending_the_same_alerts_make_one_ticket_each(
    connector: Connector,
    sandbox: Sandbox,
    alertmanagers: Callable[[str], Alertmanager],
    tmp_path: Path,
) -> None:
    # (d) An HA pair: Prometheus sends every alert to both, with the same startsAt; each
    # Alertmanager notifies on its own (here they do not even gossip), so every webhook comes twice.
    pair = [alertmanagers("am-a"), alertmanagers("am-b")]
    start = datetime.now(UTC) - timedelta(minutes=5)
    last_push = 0.0

    def push(end: datetime | None = None) -> None:
        nonlocal last_push
        for alert in ALERTS:
            for manager in pair:
                manager.add(alert, start, end)
        last_push = time.monotonic()

    def both_sent_firing_twice() -> bool:
        if time.monotonic() - last_push >= 1:
            push()
        by_sender = firing_counts(connector, by="sender")
        return sorted(by_sender) == sorted(m.external_url for m in pair) and min(
            by_sender.values()
        ) >= 2 * len(ALERTS)

    push()
    wait_until(both_sent_firing_twice, 40, "both Alertmanagers to notify every alert twice")
    connector.drain(timeout=30)
    assert_one_ticket_per_alert(sandbox, status=1)
    assert connector.deliveries_by_state() == {"done": len(ALERTS)}

    end = datetime.now(UTC)
    push(end)

    def both_sent_resolved() -> bool:
        by_sender: dict[str, int] = {}
        for event in events(connector):
            if event["status"] == "cleared":
                sender = event["properties"]["externalURL"]
                by_sender[sender] = by_sender.get(sender, 0) + 1
        return sorted(by_sender.values()) == [len(ALERTS)] * 2

    wait_until(both_sent_resolved, 30, "both Alertmanagers to send the alerts resolved")
    connector.drain(timeout=30)
    assert_one_ticket_per_alert(sandbox, status=5)
    assert connector.deliveries_by_state() == {"done": 2 * len(ALERTS)}
    assert [m.errors() for m in pair] == [[], []]
