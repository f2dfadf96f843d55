"""Periodic jobs on APScheduler (pruning, reconciliation, emergency mail, Autotask's usage),
each run once per period across every process.

Every worker process starts a scheduler (SCHEDULER_ENABLED); any number of them may share one
database. A job fires in each of them at the same instants, its period's boundaries since the
epoch, and the first process to insert the run's (job, period) row into `scheduler_run` runs
it: the others find the row there and skip the period. The unique key decides, on SQLite and
PostgreSQL alike, with no leader to elect, lose or fence (R14). A run whose process died midway
is not taken up again in its period; the next period's run does what it left (every job picks
up what is due, not what one period owed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import update

from connector.persistence.db import insert_for
from connector.persistence.models import SchedulerRun, utcnow
from connector.pipeline.heartbeat import host_process
from connector.services import Services

logger = logging.getLogger(__name__)

#: SchedulerRun.outcome is Text; a failure's words are cut to this many characters.
OUTCOME_LIMIT = 500


@dataclass(frozen=True)
class Job:
    """A periodic job: its name, period, and what it does (given the time it runs for and a
    callable that says whether the process is stopping, so a long run can end early)."""

    name: str
    period: timedelta
    run: Callable[[Services, datetime, Callable[[], bool]], object]


def default_jobs(settings: Mapping[str, Any]) -> list[Job]:
    """The jobs every scheduler runs, with the periods the settings give."""
    from connector.pipeline.reconcile import reconcile
    from connector.pipeline.retention import prune
    from connector.pipeline.thresholds import poll_thresholds

    def every(setting: str) -> timedelta:
        return timedelta(seconds=float(settings[setting]))

    return [
        Job("prune", every("PRUNE_EVERY_SECONDS"), prune),
        Job("reconcile", every("RECONCILE_EVERY_SECONDS"), reconcile),
        Job("emergency", every("EMERGENCY_CHECK_SECONDS"), _check_emergencies),
        Job("thresholds", every("THRESHOLD_POLL_SECONDS"), poll_thresholds),
    ]


def _check_emergencies(services: Services, now: datetime, _stopping: Callable[[], bool]) -> None:
    from connector.pipeline.emergency import check_emergencies

    check_emergencies(services, now)


def period_start(period: timedelta, now: datetime) -> datetime:
    """The start of the period `now` falls in: a whole multiple of `period` since the epoch."""
    seconds = period.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)


def claim_run(services: Services, job: str, start: datetime, holder: str) -> bool:
    """Insert the run's row; whether this process got it (False: another runs the period)."""
    with services.transaction() as session:
        dialect = session.get_bind().dialect.name
        statement = (
            insert_for(dialect, SchedulerRun)
            .values(job=job, period_start=start, holder=holder, started_at=utcnow())
            .on_conflict_do_nothing(index_elements=[SchedulerRun.job, SchedulerRun.period_start])
            # The row comes back only when this insert made it (rowcount is not reliable here).
            .returning(SchedulerRun.job)
        )
        return session.execute(statement).first() is not None


def end_run(services: Services, job: str, start: datetime, outcome: str) -> None:
    """Record how the run ended."""
    with services.transaction() as session:
        session.execute(
            update(SchedulerRun)
            .where(SchedulerRun.job == job, SchedulerRun.period_start == start)
            .values(finished_at=utcnow(), outcome=outcome[:OUTCOME_LIMIT])
        )


class Scheduler:
    """Runs `jobs` in a background thread, each once per period across every process."""

    def __init__(
        self,
        services: Services,
        jobs: Sequence[Job],
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.services = services
        self.jobs = list(jobs)
        self.holder = (holder or host_process())[:100]
        self.clock = clock
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        """Start firing every job at its period's boundaries (the first within one period)."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for job in self.jobs:
            self._scheduler.add_job(
                self.run_due,
                IntervalTrigger(seconds=job.period.total_seconds(), start_date=epoch),
                args=[job],
                id=job.name,
                # One run at a time, and after a pause (a suspended host) one run, not a burst.
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(job.period.total_seconds())),
            )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop firing; a job running now is told to stop and is waited for."""
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run_due(self, job: Job) -> bool:
        """Run `job` for the current period unless a process already has; whether this one did."""
        now = self.clock()
        start = period_start(job.period, now)
        try:
            if not claim_run(self.services, job.name, start, self.holder):
                return False
        except Exception:
            logger.exception("scheduler.claim_failed", extra={"job": job.name})
            return False
        extra = {"job": job.name, "period": start.isoformat(), "holder": self.holder}
        logger.info("scheduler.job_started", extra=extra)
        try:
            job.run(self.services, now, self._stopping.is_set)
        except Exception as e:
            logger.exception("scheduler.job_failed", extra=extra)
            outcome = f"failed: {type(e).__name__}: {e}"
        else:
            outcome = "ok"
            logger.info("scheduler.job_done", extra=extra)
        try:
            end_run(self.services, job.name, start, outcome)
        except Exception:
            logger.exception("scheduler.end_not_recorded", extra=extra)
        return True
