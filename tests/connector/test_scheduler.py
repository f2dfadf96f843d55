"""The scheduler: every job once per period, however many schedulers share the database."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connector.persistence.models import SchedulerRun
from connector.scheduler import Job, Scheduler, period_start
from tests.e2e.harness import wait_until

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "start"),
    [
        (timedelta(hours=1), T0 + timedelta(minutes=59, seconds=59), T0),
        (timedelta(hours=1), T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
        (timedelta(seconds=90), T0 + timedelta(seconds=100), T0 + timedelta(seconds=90)),
        (timedelta(seconds=1), T0 + timedelta(milliseconds=999), T0),
    ],
)
def test_periods_start_at_whole_multiples_since_the_epoch(
    period: timedelta, now: datetime, start: datetime
) -> None:
    """Every process computes the same period for the same instant."""
    assert period_start(period, now) == start


class Recorder:
    """A job body that counts its runs (per time it ran for) and can be made to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: Counter[datetime] = Counter()
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, services: Any, now: datetime, stopping: Any) -> None:
        with self.lock:
            self.runs[now] += 1
        if self.fail:
            raise RuntimeError("the job broke")


def scheduler(app: Flask, job: Job, holder: str, now: datetime) -> Scheduler:
    """A scheduler of `job` whose clock stands at `now`."""
    return Scheduler(app.extensions["connector"], [job], holder=holder, clock=lambda: now)


def test_many_schedulers_at_once_run_a_period_once(connector_app: Flask) -> None:
    """Eight schedulers (as eight processes would) reach the same period together: one runs it."""
    body = Recorder()
    job = Job("prune", timedelta(hours=1), body)
    schedulers = [scheduler(connector_app, job, f"host:{n}", T0) for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        ran = list(pool.map(lambda s: s.run_due(job), schedulers))
    assert ran.count(True) == 1
    assert body.runs == Counter({T0: 1})

    later = T0 + timedelta(hours=1, seconds=3)
    assert scheduler(connector_app, job, "host:9", later).run_due(job)
    assert not scheduler(connector_app, job, "host:1", later).run_due(job)
    assert body.runs == Counter({T0: 1, later: 1})
    with connector_app.extensions["connector"].transaction() as session:
        outcomes = list(session.execute(select(SchedulerRun.period_start, SchedulerRun.outcome)))
    assert sorted(outcomes) == [(T0, "ok"), (T0 + timedelta(hours=1), "ok")]


def test_a_failed_run_is_recorded_and_the_next_period_runs_again(connector_app: Flask) -> None:
    """A job that raises leaves its words on the run; the scheduler goes on."""
    body = Recorder(fail=True)
    job = Job("prune", timedelta(minutes=5), body)
    assert scheduler(connector_app, job, "host:1", T0).run_due(job)
    assert scheduler(connector_app, job, "host:1", T0 + timedelta(minutes=5)).run_due(job)
    with connector_app.extensions["connector"].transaction() as session:
        runs = list(session.scalars(select(SchedulerRun).order_by(SchedulerRun.period_start)))
    assert [run.outcome for run in runs] == ["failed: RuntimeError: the job broke"] * 2
    assert all(run.finished_at is not None and run.holder == "host:1" for run in runs)


def test_a_started_scheduler_fires_at_every_period_and_stops(connector_app: Flask) -> None:
    """With the real clock: a 1-second job runs in successive periods until stopped."""
    services = connector_app.extensions["connector"]
    body = Recorder()
    runner = Scheduler(services, [Job("tick", timedelta(seconds=1), body)], holder="host:1")
    runner.start()
    try:
        wait_until(lambda: len(body.runs) >= 2, 30, "the job to run in two periods")
    finally:
        runner.stop()
    with services.transaction() as session:
        periods = list(session.scalars(select(SchedulerRun.period_start)))
    assert len(periods) == len(body.runs) >= 2
    assert len(set(periods)) == len(periods)


def test_every_periodic_job_runs_at_its_settings_period() -> None:
    """The jobs every worker's scheduler runs, each with the period its setting gives."""
    from connector.config import DEFAULTS
    from connector.scheduler import default_jobs

    settings = dict(DEFAULTS) | {
        "PRUNE_EVERY_SECONDS": 11.0,
        "RECONCILE_EVERY_SECONDS": 12.0,
        "EMERGENCY_CHECK_SECONDS": 13.0,
        "THRESHOLD_POLL_SECONDS": 14.0,
    }
    periods = {job.name: job.period.total_seconds() for job in default_jobs(settings)}
    assert periods == {"prune": 11.0, "reconcile": 12.0, "emergency": 13.0, "thresholds": 14.0}
