"""`connector serve` as it runs in production: web processes, a worker process, one parent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from adapters.sandbox import Sandbox
from tests.conftest import HOOK_TOKEN
from tests.e2e.harness import CONNECTOR, Connector, alert, alive, descendants, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def webhook_count(base: str) -> float:
    """connector_webhooks_total{source="generic",status="202"} of one scrape."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "connector_webhooks_total" and sample.labels == {
                "source": "generic",
                "status": "202",
            }:
                return sample.value
    return 0.0


def sample(base: str, name: str) -> float:
    """An unlabelled sample of one scrape (0 when absent)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and not found.labels:
                return found.value
    return 0.0


@pytest.fixture
def serve(connector_settings: dict[str, Any], tmp_path: Path) -> Any:
    """Start `connector serve` with extra arguments; every process is stopped after the test."""
    service = Connector(dict(connector_settings, WEB_CONCURRENCY=2), tmp_path)

    def start(*args: str) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = service._spawn(["serve", *args], "serve")
        log = tmp_path / f"serve-{len(service.processes) - 1}.log"

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                return requests.get(f"{service.base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 90, "connector serve to answer /healthz")
        return process

    service.start = start  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        service.stop()


def test_serve_runs_web_processes_and_a_worker_and_stops_them_all_on_sigterm(
    serve: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    process = serve.start("--worker")
    children: set[int] = set()

    def all_started() -> bool:
        children.update(descendants(process.pid))
        return len(alive(children)) == 4

    # The web arbiter, its two web processes and the worker.
    wait_until(all_started, 30, lambda: f"four processes under serve, not {children}")

    serve.post_all([alert(i, "active") for i in range(6)])
    wait_until(lambda: len(sandbox.tickets_with_notes()) == 6, 60, "six tickets")
    # Whichever web process answers the scrape, it shows every process's count.
    for _ in range(6):
        assert webhook_count(serve.base) == 6
    wait_until(
        lambda: sample(serve.base, "connector_alert_to_ticket_seconds_count") == 6,
        30,
        "the worker's six observations in a web process's scrape",
    )

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=35) == 0
    wait_until(lambda: not alive(children), 10, lambda: f"{alive(children)} to end")
    log = (tmp_path / "serve-0.log").read_text()
    assert f"Connector service on http://127.0.0.1:{serve.port}/" in log


def test_a_child_that_dies_stops_the_others_and_the_parent_fails(serve: Any) -> None:
    process = serve.start("--worker")
    children = descendants(process.pid)
    direct = {
        pid
        for pid in children
        if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == process.pid
    }
    assert len(direct) == 2  # the web arbiter and the worker
    os.kill(min(direct), signal.SIGKILL)

    assert process.wait(timeout=35) == 1
    # Web processes whose arbiter was killed end on their own once they notice.
    wait_until(lambda: not alive(children), 10, lambda: f"{alive(children)} to end")


def test_port_0_serves_on_the_port_it_prints(
    connector_settings: dict[str, Any], tmp_path: Path
) -> None:
    service = Connector(connector_settings, tmp_path)
    service.env["CONNECTOR_PORT"] = "0"
    process = subprocess.Popen(
        [*CONNECTOR, "serve", "--no-worker"],
        env=service.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"Connector service on http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        port = int(found.group(1))
        assert port != 0
        base = f"http://127.0.0.1:{port}"

        def answered() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answered, 60, "the printed port to answer")
        posted = requests.post(
            f"{base}/hooks/generic",
            json=alert(1, "active"),
            headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
            timeout=10,
        )
        assert posted.status_code == 202
        # The answer names no server software version (S10; issue 15 saw Werkzeug/… Python/…).
        assert not re.search(r"\d", posted.headers.get("Server", "")), posted.headers
        assert posted.headers["X-Content-Type-Options"] == "nosniff"
        # No worker beats for this database: not ready, and /readyz says why.
        readiness = requests.get(f"{base}/readyz", timeout=10)
        assert readiness.status_code == 503
        assert readiness.json()["failing"] == ["worker"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=35)
        service.stop()
    assert process.returncode == 0
