"""R14: three worker processes each start the scheduler; each job runs once per period.

Each process logs the runs it starts (JSON lines); across the three logs no (job, period) may
appear twice, and the runs recorded in the database are exactly those logged.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.sandbox import SandboxServer
from connector.persistence.models import SchedulerRun
from tests.e2e.harness import Connector, wait_until

pytestmark = pytest.mark.e2e

#: Processes that each start the scheduler.
PROCESSES = 3
#: Periods the test waits for (each 1 s long: the prune job's period in this test).
PERIODS = 6


def started_runs(log_dir: Path) -> list[tuple[str, str, str]]:
    """(job, period, holder) of every run the workers' logs say they started."""
    runs = []
    for log in sorted(log_dir.glob("worker-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("message") == "scheduler.job_started":
                runs.append((entry["job"], entry["period"], entry["holder"]))
    return runs


def test_three_schedulers_run_each_period_once(
    connector_settings: dict[str, Any], sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    """R14 on SQLite and PostgreSQL: PERIODS periods of a 1 s job, three processes racing."""
    settings = {**connector_settings, "PRUNE_EVERY_SECONDS": 1.0, "LOG_FORMAT": "json"}
    service = Connector(settings, tmp_path)

    def finished_runs() -> int:
        with service.services.transaction() as session:
            count = session.scalar(
                select(func.count())
                .select_from(SchedulerRun)
                .where(SchedulerRun.job == "prune", SchedulerRun.finished_at.is_not(None))
            )
        return int(count or 0)

    try:
        for _ in range(PROCESSES):
            service.start_worker({"CONNECTOR_WORKER_ENABLED": "true"})
        wait_until(lambda: finished_runs() >= PERIODS, 120, f"{PERIODS} runs of the prune job")
    finally:
        service.stop()

    runs = started_runs(tmp_path)
    per_period = Counter((job, period) for job, period, _ in runs)
    twice = {key: count for key, count in per_period.items() if count > 1}
    try:  # read once every process has stopped (then the stopped services' pool is closed)
        with service.services.transaction() as session:
            rows = session.execute(select(SchedulerRun.job, SchedulerRun.period_start)).all()
    finally:
        service.services.dispose()
    stored = {(job, start.isoformat()) for job, start in rows}
    print(
        f"R14: {len(runs)} runs started by {len({holder for *_, holder in runs})} of"
        f" {PROCESSES} processes over {len(per_period)} periods; run twice: {len(twice)}"
    )
    assert not twice, f"periods run more than once: {twice}"
    assert len(per_period) >= PERIODS
    assert set(per_period) == stored
