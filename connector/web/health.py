"""GET /healthz: is this process up and configured. GET /readyz: can the connector do its work.

/readyz checks what the connector needs beyond this process, each by name:

- `database`: the database answers a `SELECT 1`;
- `migrations`: the database is at the newest migration this code ships;
- `worker`: a delivery worker beat in the last 3 × WORKER_HEARTBEAT_SECONDS (the
  `worker_heartbeat` table, shared by every worker of the database).

200 when all pass, else 503; `failing` names the checks that failed. Like /healthz it needs no
token, so it says nothing secret: no address, no error text, no worker name. A deployment that
runs no worker (WORKER_ENABLED false, and no `connector worker` elsewhere) is not ready: its
webhooks are accepted but nothing reaches Autotask, which is what "ready" has to rule out. Use
/healthz where only "is this web process up" matters (a load balancer that should keep taking
webhooks while the worker is down: they wait in the outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from connector.persistence.db import head_revision
from connector.persistence.models import WorkerHeartbeat, utcnow
from connector.services import Services

bp = Blueprint("health", __name__)

#: A worker whose last beat is older than this many heartbeat intervals counts as gone.
MISSED_BEATS = 3


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 with the service's status."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the database, its migrations and a worker are all right, else 503 naming which
    are not."""
    services: Services = current_app.extensions["connector"]
    checks = _checks(services)
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "not ready" if failing else "ready", "checks": checks, "failing": failing}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 503 if failing else 200


def _checks(services: Services) -> dict[str, dict[str, Any]]:
    unchecked = {"ok": False, "detail": "not checked: the database is not reachable"}
    checks: dict[str, dict[str, Any]] = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            checks["migrations"] = _guarded(_migrations, connection)
            # Last: on PostgreSQL a failed statement ends what the transaction may still do.
            heartbeat = float(services.settings["WORKER_HEARTBEAT_SECONDS"])
            checks["worker"] = _guarded(_worker, connection, heartbeat)
    except SQLAlchemyError as e:
        if "database" in checks:  # the connection failed at its end: what was read stands
            return checks
        # Only the error's class: its text may quote connection parameters.
        database = {"ok": False, "detail": f"not reachable ({type(e).__name__})"}
        return {"database": database, "migrations": unchecked, "worker": unchecked}
    return checks


def _guarded(check: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """The check's answer; a failed when the database could not answer it (a missing table)."""
    try:
        return check(*args)
    except SQLAlchemyError as e:
        return {"ok": False, "detail": f"cannot be read ({type(e).__name__})"}


def _migrations(connection: Connection) -> dict[str, Any]:
    from alembic.migration import MigrationContext

    current = MigrationContext.configure(connection).get_current_revision()
    head = head_revision()
    check: dict[str, Any] = {"ok": current == head, "revision": current, "head": head}
    if current != head:
        check["detail"] = "the database is not at the newest migration: run `connector db upgrade`"
    return check


def _worker(connection: Connection, heartbeat_seconds: float) -> dict[str, Any]:
    window = timedelta(seconds=MISSED_BEATS * heartbeat_seconds)
    since = utcnow() - window
    alive = connection.scalar(
        select(func.count()).select_from(WorkerHeartbeat).where(WorkerHeartbeat.beat_at >= since)
    )
    check: dict[str, Any] = {"ok": bool(alive), "alive": int(alive or 0)}
    if not alive:
        check["detail"] = (
            f"no delivery worker beat in the last {window.total_seconds():g} s:"
            " nothing is delivered to Autotask"
        )
    return check
