"""The `connector` console script, run as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import alive, descendants, free_port, wait_until

CONNECTOR = [sys.executable, "-m", "connector"]


def wait_for(url: str, timeout: float = 60.0) -> requests.Response:
    """GET `url` once something listens there (a starting process), failing after `timeout` s."""
    answers: list[requests.Response] = []

    def answered() -> bool:
        try:
            answers.append(requests.get(url, timeout=5))
        except (requests.ConnectionError, requests.Timeout):  # not listening, or still starting
            return False
        return True

    wait_until(answered, timeout, f"{url} to answer")
    return answers[-1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    clean.update(
        {
            "CONNECTOR_SANDBOX_USERNAME": "cli-user@sandbox.test",
            "CONNECTOR_SANDBOX_SECRET": "cli-secret",
            "CONNECTOR_SANDBOX_INTEGRATION_CODE": "CLITRACKINGID",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return clean


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run(
        [*CONNECTOR, "--help"], capture_output=True, text=True, check=True, timeout=30
    )
    for command in ("run", "serve", "worker", "db", "sandbox", "config"):
        assert f"  {command} " in result.stdout


def test_config_hides_secrets(env: dict[str, str]) -> None:
    result = subprocess.run(
        [*CONNECTOR, "config"], capture_output=True, text=True, check=True, env=env, timeout=30
    )
    assert "SANDBOX_USERNAME = 'cli-user@sandbox.test'" in result.stdout
    assert "cli-secret" not in result.stdout
    assert "SANDBOX_SECRET = <secret>" in result.stdout


def test_bad_setting_is_a_clear_error(env: dict[str, str]) -> None:
    env["CONNECTOR_PORT"] = "nope"
    result = subprocess.run(
        [*CONNECTOR, "config"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode != 0
    assert "configuration error: CONNECTOR_PORT" in result.stderr


def test_sandbox_command_serves_with_its_preset_credentials_and_never_prints_them(
    env: dict[str, str], processes: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CONNECTOR, "sandbox", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(process)
    base = f"http://127.0.0.1:{port}/"
    zone = wait_for(f"{base}atservicesrest/v1.0/zoneInformation?user=cli-user@sandbox.test")
    assert zone.status_code == 200
    assert zone.json()["url"] == f"{base}atservicesrest/"
    headers = {
        "UserName": "cli-user@sandbox.test",
        "Secret": "cli-secret",
        "ApiIntegrationCode": "CLITRACKINGID",
    }
    created = requests.post(
        f"{base}atservicesrest/v1.0/Tickets",
        json={"companyID": 0, "title": "from the CLI test", "status": 1, "priority": 2},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 200
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "cli-user@sandbox.test" in output
    # Preset secrets are never echoed (issue 15): the output names the settings instead.
    assert "cli-secret" not in output
    assert "CLITRACKINGID" not in output
    assert "preset (CONNECTOR_SANDBOX_SECRET); not shown" in output


def test_run_turns_a_webhook_into_a_sandbox_ticket(
    env: dict[str, str], processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    env["PORT"] = str(free_port())
    env["SANDBOX_PORT"] = str(free_port())
    env["CONNECTOR_HOOK_TOKEN"] = "run-hook-token-0123456789"
    env["CONNECTOR_API_TOKEN"] = "run-api-token-0123456789"
    process = subprocess.Popen(
        [*CONNECTOR, "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(process)
    health = wait_for(f"http://127.0.0.1:{env['PORT']}/healthz")
    assert health.json() == {"status": "ok"}
    posted = requests.post(
        f"http://127.0.0.1:{env['PORT']}/hooks/generic",
        json={"id": "run-1", "status": "active", "severity": "critical", "title": "From make run"},
        headers={"Authorization": "Bearer run-hook-token-0123456789"},
        timeout=10,
    )
    assert posted.status_code == 202
    sandbox = f"http://127.0.0.1:{env['SANDBOX_PORT']}/_sandbox/tickets"
    tickets: list[dict[str, object]] = []

    def ticket_made() -> bool:
        tickets[:] = requests.get(sandbox, timeout=5).json()
        return bool(tickets)

    wait_until(ticket_made, 30, "the worker to create the ticket in the sandbox")
    assert [(t["title"], t["priority"], t["companyID"]) for t in tickets] == [
        ("From make run", 4, 29683414)
    ]
    assert (tmp_path / "var" / "connector.sqlite").exists()
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o077 == 0

    # Two-way close out of the box: `run` registered the ticket webhook with its sandbox, so a
    # technician completing the ticket there closes the alert's ticket link.
    changed = requests.patch(f"{sandbox}/{tickets[0]['id']}", json={"status": 5}, timeout=10)
    assert changed.status_code == 200

    def closed_there() -> bool:
        found = requests.get(
            f"http://127.0.0.1:{env['PORT']}/api/v1/alerts",
            headers={"Authorization": "Bearer run-api-token-0123456789"},
            timeout=10,
        ).json()
        ticket = found["alerts"][0]["ticket"] if found["alerts"] else None
        return ticket is not None and ticket["state"] == "closed_remotely"

    wait_until(closed_there, 30, "the technician's completion to reach the connector")


def test_run_runs_each_part_in_its_own_process_and_sigterm_ends_them_all(
    env: dict[str, str], tmp_path: Path
) -> None:

    env["PORT"] = str(free_port())
    env["SANDBOX_PORT"] = str(free_port())
    presets = {
        "CONNECTOR_HOOK_TOKEN": "preset-hook-token-6a1f0c",
        "CONNECTOR_SANDBOX_INTEGRATION_CODE": "PRESETTRACKINGID7",
    }
    env.update(presets)
    (tmp_path / "var").mkdir(mode=0o755)  # as an older version left it
    process = subprocess.Popen(
        [*CONNECTOR, "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{env['PORT']}/healthz")
        children: set[int] = set()

        def all_started() -> bool:
            children.update(descendants(process.pid))
            return len(alive(children)) == 5

        # The sandbox, the web arbiter with its two web processes, and the worker.
        wait_until(all_started, 30, lambda: f"five processes under run, not {children}")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=35)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    wait_until(lambda: not alive(children), 10, lambda: f"{alive(children)} to end")
    assert "Autotask sandbox (a local simulator of Autotask PSA) on http://127.0.0.1:" in output
    assert f"Connector service on http://127.0.0.1:{env['PORT']}/" in output
    assert (tmp_path / "var" / "metrics").is_dir()
    # Preset secrets never appear in the output or logs; generated ones not off a terminal.
    for name, value in presets.items():
        assert value not in output
        assert f"preset ({name}); not shown" in output
    api_token = (tmp_path / "var" / "api_token.txt").read_text().strip()
    assert api_token not in output
    assert "token kept in var/api_token.txt" in output
    # The key, the tokens and the database: owner-only, in an owner-only folder.
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    for name in ("secret.key", "api_token.txt", "connector.sqlite"):
        assert (tmp_path / "var" / name).stat().st_mode & 0o077 == 0, name
