"""Worker heartbeats: a running worker upserts its `worker_heartbeat` row every
WORKER_HEARTBEAT_SECONDS and deletes it when it stops cleanly, so GET /readyz can tell whether
any worker is alive (one whose beat is newer than ALIVE_BEATS heartbeats).

A worker that died without stopping leaves its row; any worker prunes rows older than
PRUNE_AFTER.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.persistence.db import insert_for
from connector.persistence.models import WorkerHeartbeat

#: A worker counts as alive while its last beat is newer than this many heartbeat intervals.
ALIVE_BEATS = 3
#: Rows of workers silent this long are deleted by whichever worker beats next.
PRUNE_AFTER = timedelta(hours=1)
#: The column's width: longer worker ids are cut.
WORKER_ID_CHARS = 100


def host_process() -> str:
    """This process as claims, leases and logs name it: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(
    session: Session, worker_id: str, threads: int, started_at: datetime, now: datetime
) -> None:
    """Record that the worker is alive now (insert or update its row); prune long-dead ones."""
    key = worker_id[:WORKER_ID_CHARS]
    statement = insert_for(session.get_bind().dialect.name, WorkerHeartbeat).values(
        worker_id=key, threads=threads, started_at=started_at, beat_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.worker_id],
            set_={"threads": threads, "started_at": started_at, "beat_at": now},
        )
    )
    session.execute(
        delete(WorkerHeartbeat)
        .where(WorkerHeartbeat.beat_at < now - PRUNE_AFTER, WorkerHeartbeat.worker_id != key)
        .execution_options(synchronize_session=False)
    )


def forget(session: Session, worker_id: str) -> None:
    """Delete the worker's row: it stopped cleanly."""
    session.execute(
        delete(WorkerHeartbeat)
        .where(WorkerHeartbeat.worker_id == worker_id[:WORKER_ID_CHARS])
        .execution_options(synchronize_session=False)
    )


def alive(session: Session, now: datetime, interval_seconds: float) -> list[WorkerHeartbeat]:
    """The workers whose last beat is newer than ALIVE_BEATS × `interval_seconds`."""
    since = now - timedelta(seconds=ALIVE_BEATS * interval_seconds)
    return list(
        session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.beat_at > since)
            .order_by(WorkerHeartbeat.worker_id)
        )
    )
