"""End-to-end harness: the connector as real processes (web, workers) against the sandbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from adapters.sandbox import Sandbox
from connector import create_app
from connector.cli import prepare_database
from connector.persistence.models import Delivery
from tests import canary_plugin
from tests.conftest import API_TOKEN, HOOK_TOKEN

CONNECTOR = [sys.executable, "-m", "connector"]


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str]
) -> None:
    """Poll `predicate` until it holds, or fail naming `what` (a callable: worded at failure)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            waited_for = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {waited_for}")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 30) -> str:
    """The last lines a process wrote, to explain a failure."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _parents() -> dict[int, list[int]]:
    """Every running process's children, by parent pid, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # The command name in parentheses may hold spaces: the fields after it are plain.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    return parents


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (zombies included: see `alive`)."""
    return set(_parents().get(pid, []))


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children …), from /proc."""
    parents = _parents()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has finished)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


class Connector:
    """A connector web process plus any number of worker processes, sharing one database."""

    def __init__(self, settings: dict[str, Any], log_dir: Path) -> None:
        self.settings = dict(settings)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        self.env.update({f"CONNECTOR_{k}": _env_value(v) for k, v in self.settings.items()})
        self.env["CONNECTOR_PORT"] = str(self.port)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.processes: list[subprocess.Popen[bytes]] = []
        #: What each process wrote (stdout and stderr), looked at for canaries when stopped.
        self.logs: list[Path] = []
        self.session = requests.Session()
        app = create_app(self.settings)
        self.services = app.extensions["connector"]
        prepare_database(self.services)

    def _spawn(self, args: list[str], name: str, extra_env: dict[str, str] | None = None) -> Any:
        path = self.log_dir / f"{name}-{len(self.processes)}.log"
        self.logs.append(path)
        log = path.open("wb")
        env = dict(self.env)
        env.update(extra_env or {})
        process = subprocess.Popen(
            [*CONNECTOR, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.processes.append(process)
        return process

    def start_web(self) -> subprocess.Popen[bytes]:
        """Start the web process (no worker in it), wait until it answers; the process."""
        process: subprocess.Popen[bytes] = self._spawn(["serve", "--no-worker"], "web")
        log = self.log_dir / f"web-{len(self.processes) - 1}.log"

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"the web process exited with {process.returncode}:\n{_tail(log)}"
                )
            try:
                return self.session.get(f"{self.base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        # A generous deadline: on a loaded 2-core machine a cold start can take a while.
        wait_until(healthy, 90, lambda: f"the web process to answer /healthz:\n{_tail(log)}")
        return process

    def start_worker(self, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start one `connector worker` process."""
        process: subprocess.Popen[bytes] = self._spawn(["worker"], "worker", extra_env)
        return process

    def post(self, alert: dict[str, Any]) -> requests.Response:
        """POST one generic alert with the hook token."""
        return self.session.post(
            f"{self.base}/hooks/generic",
            json=alert,
            headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
            timeout=30,
        )

    def post_all(self, alerts: Iterable[dict[str, Any]], threads: int = 8) -> None:
        """POST alerts from a few threads; every one must be accepted."""

        def send(alert: dict[str, Any]) -> int:
            return self.post(alert).status_code

        with ThreadPoolExecutor(threads) as pool:
            statuses = list(pool.map(send, alerts))
        assert set(statuses) == {202}, statuses

    def api(self, path: str, method: str = "GET") -> requests.Response:
        """Call the JSON API with the API token."""
        return self.session.request(
            method,
            f"{self.base}/api/v1/{path}",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=30,
        )

    def unfinished(self) -> int:
        """Deliveries not yet done or dead."""
        with self.services.transaction() as session:
            count = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.state.in_(("pending", "in_progress")))
            )
        return int(count or 0)

    def deliveries_by_state(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        with self.services.transaction() as session:
            rows = session.execute(
                select(Delivery.state, func.count()).group_by(Delivery.state)
            ).all()
        return {state: int(count) for state, count in rows}

    def drain(self, timeout: float) -> None:
        """Wait until every delivery is done or dead."""
        wait_until(lambda: self.unfinished() == 0, timeout, "the outbox to drain")

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), close the database, read the outputs."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.session.close()
        self.services.dispose()
        for path in self.logs:  # no secret may be in what they wrote (tests/canary_plugin.py)
            if path.exists():
                canary_plugin.scan_text(path.read_text(errors="replace"), f"the output {path.name}")


def _env_value(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


SEVERITY_PRIORITY = {"critical": 4, "error": 1, "warning": 2, "info": 3}
SEVERITIES = list(SEVERITY_PRIORITY)


def alert(index: int, status: str, **extra: Any) -> dict[str, Any]:
    """The generic webhook of alert number `index` in status `status`."""
    body = {
        "id": f"e2e-{index:05d}",
        "status": status,
        "severity": SEVERITIES[index % 4],
        "title": f"E2E alert {index:05d}",
        "message": f"check {index} failed",
        "host": f"host-{index % 7}",
        "started_at": "2026-11-22T10:00:00Z",
    }
    if status in ("acknowledged", "escalated"):
        body["acknowledged_by"] = "oncall"
        body["note"] = f"looking at {index}"
    body.update(extra)
    return body


def audit_lifecycles(sandbox: Sandbox, count: int) -> None:
    """Exactly one ticket per alert, mapped priority, completed, notes and changes in order."""
    tickets = sandbox.tickets_with_notes()
    by_title: dict[str, list[dict[str, Any]]] = {}
    for ticket in tickets:
        by_title.setdefault(ticket["title"], []).append(ticket)
    duplicated = sorted(title for title, found in by_title.items() if len(found) > 1)
    expected = {f"E2E alert {i:05d}" for i in range(count)}
    lost = sorted(expected - set(by_title))
    assert (lost, duplicated) == ([], []), f"lost {lost[:5]}…, duplicated {duplicated[:5]}…"
    assert len(tickets) == count
    assert len({t["externalID"] for t in tickets}) == count
    for ticket in tickets:
        index = int(ticket["title"].rsplit(" ", 1)[1])
        assert ticket["priority"] == SEVERITY_PRIORITY[SEVERITIES[index % 4]], ticket["title"]
        assert ticket["status"] == 5 and ticket["completedDate"], ticket["title"]
        notes = sorted(ticket["notes"], key=lambda n: n["id"])
        kinds = [note["title"].rsplit(" — ", 1)[1] for note in notes]
        # The clear's text is the resolution of the update that completes: no note of its own.
        assert kinds == ["acknowledged"], (ticket["title"], kinds)
        assert ticket["resolution"].startswith("Alert cleared."), ticket["title"]
        moments = [ticket["createDate"], *(n["createDateTime"] for n in notes)]
        moments.append(ticket["completedDate"])
        assert moments == sorted(moments), (ticket["title"], moments)


#: The REST writes every alert's ticket must see, in this order: create as New, status
#: In Progress on acknowledgement and its note, then Complete with the resolution.
LIFECYCLE_WRITES = [("create", 1), ("status", 8), ("note", None), ("status", 5)]


def ticket_write_sequences(sandbox: Sandbox) -> dict[int, list[tuple[str, int | None]]]:
    """Per ticket id, the successful REST writes in the order the sandbox finished them."""
    by_marker = {t["externalID"]: t["id"] for t in sandbox.tickets_with_notes()}
    sequences: dict[int, list[tuple[str, int | None]]] = {}
    for call in sandbox.calls():
        if call.api != "rest" or call.status != 200 or call.method not in ("POST", "PATCH"):
            continue
        body = call.request_body or {}
        path = call.path.split("?")[0].rstrip("/")
        if call.method == "POST" and path.endswith("/tickets"):
            ticket_id = by_marker[body["externalID"]]
            sequences.setdefault(ticket_id, []).append(("create", body["status"]))
        elif call.method == "PATCH" and path.endswith("/tickets"):
            sequences.setdefault(int(body["id"]), []).append(("status", body["status"]))
        elif call.method == "POST" and path.endswith("/notes"):
            ticket_id = int(path.split("/")[-2])
            sequences.setdefault(ticket_id, []).append(("note", None))
    return sequences


def audit_write_order(sandbox: Sandbox) -> None:
    """Every ticket saw create < acknowledge < clear, by the sandbox's own call log."""
    sequences = ticket_write_sequences(sandbox)
    wrong = {tid: seq for tid, seq in sequences.items() if seq != LIFECYCLE_WRITES}
    assert not wrong, f"{len(wrong)} tickets out of order, e.g. {list(wrong.items())[:3]}"
