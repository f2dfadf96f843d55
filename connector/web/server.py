"""gunicorn, used programmatically: `connector serve` and `connector run` stay one command."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger


def _mark_dead(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: a web process's metric files are folded into the dead ones."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class _Logs(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's own lines through the connector's log handler (LOG_FORMAT, LOG_LEVEL)."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup, then its error log handed to the root logger's handler."""
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class WebApplication(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """WEB_CONCURRENCY web processes on an already listening socket; an app per process."""

    def __init__(self, settings: Mapping[str, Any], fd: int) -> None:
        from connector import serving

        self.settings = dict(settings)
        self.options: dict[str, Any] = {
            "bind": [f"fd://{fd}"],
            "workers": int(settings["WEB_CONCURRENCY"]),
            "worker_class": serving.WORKER_CLASS,
            "threads": serving.THREADS,
            # As many connections as threads: a web process takes no connection it cannot serve
            # at once, so the next one goes to a sibling. With gunicorn's default (1000), the
            # first process to wake took every keep-alive connection of a sender and the other
            # sat idle (measured: 8 wrk connections, one process at 63 % CPU, the other at 1 %).
            # gthread keeps no connection alive then (it closes each after its answer), so
            # keep-alive is off outright: the same behaviour, without gunicorn's warning at
            # every start.
            "worker_connections": serving.THREADS,
            "keepalive": 0,
            "graceful_timeout": serving.GRACEFUL_SECONDS,
            "backlog": serving.BACKLOG,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": _Logs,
            "loglevel": str(settings["LOG_LEVEL"]).lower(),
            "proc_name": "connector-web",
            "child_exit": _mark_dead,
            # gunicorn ≥ 25 opens a control socket at one path per user by default: several
            # connectors on one host would fight over it, and nothing here uses it.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        """Our options, each only where this gunicorn version has the setting."""
        for name, value in self.options.items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)

    def load(self) -> Flask:
        """The app of one web process, built after its fork (no engine crosses a fork)."""
        from connector import create_app

        return create_app(self.settings)
