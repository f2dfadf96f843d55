"""What side_by_side.py drives: processes it starts and always stops, venvs, wrk, PostgreSQL.

Every process is started in its own session (so its whole group can be stopped) and asks the
kernel to stop it should this script die without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WRK_SCRIPT = BENCH / "wrk_alerts.lua"

_started: list[Process] = []


class BenchError(Exception):
    """A real failure: the run cannot go on (exit status 1)."""


def say(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when the bench dies (Linux); new session for killpg."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Process:
    """A started process group, its output in a log file; stop() ends the whole group."""

    def __init__(
        self, name: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str], logs: Path
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = logs / f"{name}.log"
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(  # noqa: S603 (argv built by this script)
            list(argv),
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        _started.append(self)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        """The last lines of its output."""
        self._out.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the group, SIGKILL after `grace` seconds; idempotent."""
        if self in _started:
            _started.remove(self)
        pgid = self.popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            say(f"  {self.name} did not stop within {grace:.0f} s: killed")
        # Whatever is left of the group (workers of a stopped master) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._out.close()


def stop_all() -> None:
    """Stop every process this run started and has not stopped yet (newest first)."""
    for process in reversed(list(_started)):
        process.stop(grace=10.0)


def install_signal_handlers() -> None:
    """SIGINT (even when a shell started us ignoring it), SIGTERM and SIGHUP end the run as
    Ctrl-C does, so `finally` cleans up."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def wait_http(
    url: str, process: Process, *, timeout: float = 90.0, ok: Sequence[int] = (200,)
) -> None:
    """Wait until `url` answers one of `ok`; fail (with the log's tail) if the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            code = process.popen.returncode
            raise BenchError(f"{process.name} exited ({code}):\n{process.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code in ok:
                return
        time.sleep(0.2)
    raise BenchError(f"{process.name}: {url} did not answer in {timeout:.0f} s:\n{process.tail()}")


def run_quiet(
    argv: Sequence[str], log: Path, *, what: str, env: dict[str, str] | None = None
) -> None:
    """Run a setup command, its output to `log`; fail with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        code = subprocess.call(  # noqa: S603
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"{what} failed (exit {code}); {log}:\n{tail}")


def ensure_venv(path: Path, requirements: Sequence[str], logs: Path) -> Path:
    """A venv at `path` holding `requirements` (made once; redone when they change)."""
    stamp = path / ".bench-installed"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted:
        return path / "bin"
    say(f"  installing {' '.join(requirements)} into {path} (once)")
    if path.exists():
        shutil.rmtree(path)
    log = logs / f"pip-{path.name}.log"
    run_quiet([sys.executable, "-m", "venv", str(path)], log, what=f"making the venv {path}")
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run_quiet([*pip, "--upgrade", "pip"], log, what="upgrading pip")
    run_quiet([*pip, *requirements], log, what=f"installing {' '.join(requirements)}")
    stamp.write_text(wanted)
    return path / "bin"


def ensure_wrk() -> str | None:
    """wrk's path, installed from Debian's packages when missing; None (said why) if it can't."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        say("wrk is missing and this is not root: run `sudo apt-get -y install wrk` (skipping wrk)")
        return None
    if not shutil.which("apt-get"):
        say("wrk is missing and there is no apt-get here: install wrk (skipping wrk)")
        return None
    say("  installing wrk (apt-get -y install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Without package lists (a fresh container) the install fails: update them once and retry.
    for argv in (["install", "-y", "wrk"], ["update"], ["install", "-y", "wrk"]):
        if shutil.which("wrk"):
            break
        subprocess.run(  # noqa: S603
            ["apt-get", *argv],  # noqa: S607
            check=False,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    found = shutil.which("wrk")
    if not found:
        say("apt-get could not install wrk (try `apt-get update` first); skipping wrk")
    return found


def run_wrk(
    wrk: str,
    url: str,
    kind: str,
    run_id: str,
    *,
    threads: int,
    connections: int,
    duration: int,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """Run wrk with the new-alert-per-request script; return its BENCH_JSON figures."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
    ]
    for header in headers:
        argv += ["-H", header]
    argv += [url, "--", kind, run_id]
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            statuses = {int(code): n for code, n in figures["statuses"].items()}
            seconds = figures["duration_us"] / 1e6
            accepted = sum(n for code, n in statuses.items() if 200 <= code < 300)
            figures["statuses"] = {str(code): n for code, n in sorted(statuses.items())}
            figures["accepted"] = accepted
            figures["not_2xx"] = sum(statuses.values()) - accepted
            figures["accepted_per_s"] = accepted / seconds if seconds else 0.0
            return figures
    raise BenchError(f"wrk gave no figures (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def postgres_ready(admin_url: str) -> bool:
    """Whether PostgreSQL answers at `admin_url` (a libpq URL of an existing database)."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def fresh_database(admin_url: str, name: str) -> None:
    """Drop (if there) and create the bench's own database `name`."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        database = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(database))


@contextlib.contextmanager
def started(process: Process) -> Iterator[Process]:
    """Stop `process` when the block ends, however it ends."""
    try:
        yield process
    finally:
        process.stop()


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def git_commit(root: Path = ROOT) -> str:
    """The checkout's commit (with + when connector/ or adapters/ have changes), or '?'."""
    try:
        commit = subprocess.run(  # noqa: S603
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(root), "status", "--porcelain", "--", "connector", "adapters"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+" if dirty else "")
