"""Production serving for `connector run` and `connector serve`: one parent supervises processes.

The parent binds the web port (so the real address is known and printed, port 0 included),
prepares the database once, then forks its children and watches them:

- web: a gunicorn arbiter with WEB_CONCURRENCY web processes on the parent's socket; each web
  process builds its own app (and so its own engine) after the fork;
- worker: a delivery worker, like `connector worker` (when asked for);
- sandbox: the Autotask sandbox (`connector run` only; started by the CLI, which may wire it).

SIGTERM or SIGINT to the parent stops the web and worker processes gracefully (in-flight
requests and deliveries finish), then the sandbox, within STOP_SECONDS. A child that dies
unexpectedly is logged, the others are stopped and the parent exits 1: it does not restart it,
so that a process manager (systemd, Docker, Kubernetes) sees the failure and applies its own
restart policy.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

#: From SIGTERM to the parent until every child is gone (SIGKILL for any still there).
STOP_SECONDS = 30.0
#: Of those, what the processes stopped last (the sandbox) keep for themselves.
LAST_STOP_SECONDS = 4.0
#: How long a web process may finish its in-flight requests after SIGTERM.
GRACEFUL_SECONDS = 20
#: gunicorn's worker class and threads per web process, chosen by measurement (README "Serving"):
#: gthread's threads overlap a request's database waits (no keep-alive: see web/server.py).
WORKER_CLASS = "gthread"
THREADS = 4
#: Pending connections the web socket queues while every web process is busy.
BACKLOG = 2048
#: The environment variable prometheus_client's multiprocess mode reads.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: The signals that stop the connector.
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: Linux prctl option: a signal sent to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), bound before any child starts.

    Raises OSError when the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def use_metrics_dir(path: Path) -> None:
    """Set up prometheus_client's multiprocess mode in `path` (made, emptied), for every child.

    Old `*.db` files are removed: the counts start at each start. Call it before any metric is
    made in this process, and before the children are forked.
    """
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[METRICS_DIR_VARIABLE] = str(path.resolve())
    from prometheus_client import values

    # prometheus_client picks its value class when first imported; when that was before the
    # variable was set, pick again (no metric is made before this call).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def metrics_dir(default: Path | None) -> tuple[Path, bool]:
    """Where the processes' metric files go: PROMETHEUS_MULTIPROC_DIR when set, else `default`,
    else a new temporary directory; and whether it is temporary (removed at the end)."""
    preset = os.environ.get(METRICS_DIR_VARIABLE)
    if preset:
        return Path(preset), False
    if default is not None:
        return default, False
    return Path(tempfile.mkdtemp(prefix="connector-metrics-")), True


def remove_metrics_dir(path: Path) -> None:
    """Remove a temporary metrics directory made by metrics_dir."""
    shutil.rmtree(path, ignore_errors=True)


def stop_on_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM or SIGINT."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@dataclass
class _Child:
    name: str
    process: BaseProcess
    #: Stopped after the others (the sandbox, which the worker's last calls still need).
    last: bool = False


@dataclass
class Supervisor:
    """Starts child processes by fork and stops them all when one dies or a signal comes."""

    children: list[_Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        stop_on_signals(self.stopping)

    def start(
        self, name: str, target: Callable[..., Any], *args: Any, last: bool = False
    ) -> BaseProcess:
        """Fork a child that runs `target(*args)`; its exit code is 0 unless it raised."""
        context = multiprocessing.get_context("fork")
        # What is buffered would otherwise be written again by the child.
        sys.stdout.flush()
        sys.stderr.flush()
        process = context.Process(
            target=_child_main,
            args=(self.pid, target, *args),
            name=f"connector-{name}",
            # Should the parent fail before its stop(), multiprocessing still ends the child at
            # the parent's exit instead of waiting for it forever.
            daemon=True,
        )
        # Blocked across the fork: a signal must not reach the child while it still has the
        # parent's handlers (it unblocks them once its own are set).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        self.children.append(_Child(name, process, last))
        logger.info("serving.started", extra={"child": name, "pid": process.pid})
        return process

    def run(self) -> int:
        """Wait for SIGTERM/SIGINT or a child's death, stop every child; the exit code to use.

        0 after a signal; 1 when a child died on its own (it is logged, not restarted).
        """
        died: _Child | None = None
        while died is None and not self.stopping.is_set():
            wait([child.process.sentinel for child in self.children], timeout=0.5)
            died = next((c for c in self.children if not c.process.is_alive()), None)
        if died is not None and not self.stopping.is_set():
            logger.error(
                "serving.process_died",
                extra={"child": died.name, "exit_code": died.process.exitcode},
            )
            self.stop()
            return 1
        self.stop()
        return 0

    def stop(self) -> None:
        """SIGTERM the children (the `last` ones after the others), SIGKILL any left over."""
        deadline = time.monotonic() + STOP_SECONDS
        first = [c for c in self.children if not c.last]
        last = [c for c in self.children if c.last]
        self._terminate(first, deadline - LAST_STOP_SECONDS)
        self._terminate(last, deadline)

    def _terminate(self, children: list[_Child], deadline: float) -> None:
        for child in children:
            if child.process.is_alive() and child.process.pid is not None:
                os.kill(child.process.pid, signal.SIGTERM)
        for child in children:
            child.process.join(max(deadline - time.monotonic(), 0.0))
            logger.info(
                "serving.stopped", extra={"child": child.name, "exit_code": child.process.exitcode}
            )
            if child.process.is_alive():
                logger.error("serving.process_killed", extra={"child": child.name})
                child.process.kill()
                child.process.join(5)


def _child_main(parent_pid: int, target: Callable[..., Any], *args: Any) -> None:
    """A child's start: its own process group, tied to the parent's life, default signals."""
    # Out of the terminal's process group: Ctrl-C reaches the parent only, which stops the
    # children gracefully in order (the terminal would send SIGINT to all of them at once).
    os.setpgid(0, 0)
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    target(*args)


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when the parent dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # no prctl: the parent's stop() is all there is
            return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        raise SystemExit(0)


# -- the children ---------------------------------------------------------------------------------


def serve_web(settings: Mapping[str, Any], fd: int) -> None:
    """Run gunicorn's arbiter and WEB_CONCURRENCY web processes on the listening socket `fd`."""
    from connector.web.server import WebApplication

    WebApplication(settings, fd).run()


def lower_priority(niceness: int) -> None:
    """Run this process `niceness` steps below the web processes (0: as they do).

    Webhooks first: a sender waits for its answer and gives up after its timeout, a delivery
    waits for nobody and catches up after a storm. Without it, a worker busy with a storm's
    deliveries took the CPU the same storm's webhooks needed.
    """
    if niceness > 0:
        os.nice(niceness)


def run_worker(settings: Mapping[str, Any], worker_id: str | None = None) -> None:
    """Run a delivery worker until SIGTERM or SIGINT (what `connector worker` runs)."""
    from connector import create_app
    from connector.services import Services
    from connector.wiring import make_scheduler, make_worker

    lower_priority(int(settings["WORKER_NICENESS"]))
    services: Services = create_app(dict(settings)).extensions["connector"]
    stop = threading.Event()
    stop_on_signals(stop)
    scheduler = make_scheduler(services) if settings["SCHEDULER_ENABLED"] else None
    try:
        if scheduler is not None:
            scheduler.start()
        make_worker(services, worker_id=worker_id).run(stop)
    finally:
        if scheduler is not None:
            scheduler.stop()
        services.dispose()
