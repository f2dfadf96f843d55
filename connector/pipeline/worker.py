"""The delivery worker: claim due deliveries in per-alert order, carry out their plans.

One delivery, in three parts: its attempt starts (attempts.py: lease, load, plan, committed before
any call), each step goes to the ticket system (steps.py: route, draft, render, send, through
dispatch.py) and is committed, and the attempt ends however it ended (attempts.py again).

Exactly-once tickets: before a create is sent, its TicketLink is committed as pending_create with
a fresh correlation marker (the ticket's externalID). If the outcome of the create is then lost
(timeout, dropped connection, crash after sending), the next attempt looks the marker up in
Autotask and adopts the ticket it finds instead of creating a second one.

Concurrency: `run` works on WORKER_THREADS deliveries at once, one per thread ("lane"). A lane
claims one delivery only when it is free, so nothing waits in a batch behind a slow call, and the
outbox hands out an alert's next delivery only once the one before it is finished: never two of
one alert in flight, in this process or any other. Each lane has its own attempts (call log,
targets, sessions); the governor's slots (3 per endpoint) stay the bound on concurrent calls, a
lane beyond them waiting for one as a worker in another process would.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from connector.persistence.models import utcnow
from connector.pipeline import heartbeat
from connector.pipeline.attempts import Attempts
from connector.pipeline.governor import Governor, Limits
from connector.pipeline.outbox import HandedBack, Outbox, RetryPolicy
from connector.pipeline.steps import Faultpoint, StepSender
from connector.services import Services, TargetFactory

logger = logging.getLogger(__name__)

#: Added to the timeouts of an unanswered create before its marker is looked up: the governor's
#: wait for a slot (2 s) and the clocks of two hosts.
CREATE_GUARD_MARGIN_SECONDS = 5.0


class _Wakeup:
    """Wakes idle lanes when a lane finished a delivery (its alert's next one may be due now)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        """Something may be claimable now: wake every idle lane."""
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Wait up to `timeout` seconds unless something changed since generation `seen`."""
        with self._changed:
            if self.generation == seen:
                self._changed.wait(timeout)


class Worker:
    """Claims and processes deliveries; any number may run against one database.

    The ticket targets come from `target_factory`, by default the one the composition root put
    on `services`. `threads` (default WORKER_THREADS) deliveries are worked on at once by `run`.
    """

    def __init__(
        self,
        services: Services,
        target_factory: TargetFactory | None = None,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        governor: Governor | None = None,
        threads: int | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.target_factory = target_factory or services.targets()
        self.worker_id = worker_id or f"{heartbeat.host_process()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 -- retry jitter, not security
        self.outbox = Outbox(
            services,
            owner=self.worker_id,
            lease=timedelta(seconds=float(settings["WORKER_LEASE_SECONDS"])),
            batch=int(settings["WORKER_BATCH"]),
            retry=RetryPolicy(tuple(settings["RETRY_DELAYS"]), float(settings["RETRY_JITTER"])),
            clock=clock,
            rng=self.rng,
        )
        self.poll_seconds = float(settings["WORKER_POLL_SECONDS"])
        self.threads = max(int(threads or settings.get("WORKER_THREADS", 3)), 1)
        self.heartbeat_seconds = float(settings.get("WORKER_HEARTBEAT_SECONDS", 5.0))
        self.lease_seconds = self.outbox.lease.total_seconds()
        #: How long after an unanswered create its call may still be running: the timeouts, the
        #: governor's wait for a slot, and a margin for the clocks of two hosts.
        self.create_guard = timedelta(
            seconds=float(settings["AUTOTASK_CONNECT_TIMEOUT"])
            + float(settings["AUTOTASK_READ_TIMEOUT"])
            + CREATE_GUARD_MARGIN_SECONDS
        )
        self.governor = governor or Governor(services, Limits.from_settings(settings), clock=clock)
        #: The attempts of the calling thread (run_once, process); each lane of `run` has its own.
        self.attempts = Attempts(services, self.outbox, self.target_factory, self.governor, clock)
        self.steps = StepSender(self.create_guard, clock, self.rng, Faultpoint.from_environment())
        self._lane = threading.local()

    def claim(self) -> list[int]:
        """Lease up to a batch of due deliveries (see Outbox.claim)."""
        return self.outbox.claim()

    def run_once(self) -> int:
        """Claim and process one batch; return how many deliveries were processed."""
        ids = self.claim()
        for delivery_id in ids:
            self.process(delivery_id)
        return len(ids)

    def wake_throttled(self) -> int:
        """Make deliveries the governor held back due now (see Outbox.wake_throttled)."""
        return self.outbox.wake_throttled()

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, `threads` deliveries at once; beat the heartbeat meanwhile.

        Once `stop` is set each lane hands its delivery back after the step in flight (due again
        at once, its done steps kept) and `run` returns: within one call's timeouts, well inside
        the lease. Database outages are logged and waited out, never fatal.
        """
        logger.info("worker.started", extra={"worker_id": self.worker_id, "threads": self.threads})
        started_at = self.clock()
        self._beat(started_at)
        try:
            woken = self.wake_throttled()
        except Exception:  # a database not reachable yet: the loop below copes with that
            logger.exception("worker.wake_throttled_failed")
        else:
            if woken:
                logger.info("worker.woke_throttled", extra={"deliveries": woken})
        wakeup = _Wakeup()
        lanes = [
            threading.Thread(
                target=self._run_lane,
                args=(lane, stop, wakeup),
                name=f"worker-{lane}",
                daemon=True,  # a lane stuck in a call must not keep the process alive
            )
            for lane in range(self.threads)
        ]
        for lane in lanes:
            lane.start()
        while not stop.wait(self.heartbeat_seconds):
            self._beat(started_at)
        wakeup.notify()
        deadline = time.monotonic() + self.lease_seconds
        for lane in lanes:
            lane.join(timeout=max(deadline - time.monotonic(), 0.0))
        busy = [lane.name for lane in lanes if lane.is_alive()]
        if busy:  # their deliveries' leases run out; another worker takes them over
            logger.warning("worker.lanes_still_busy", extra={"lanes": busy})
        try:
            with self.services.transaction() as session:
                heartbeat.forget(session, self.worker_id)
        except Exception:
            logger.exception("worker.heartbeat_failed")
        logger.info("worker.stopped", extra={"worker_id": self.worker_id})

    def _beat(self, started_at: datetime) -> None:
        """Record that this worker is alive; a database outage is logged, not raised."""
        try:
            with self.services.transaction() as session:
                heartbeat.beat(session, self.worker_id, self.threads, started_at, self.clock())
        except Exception:
            logger.exception("worker.heartbeat_failed")

    def _run_lane(self, lane: int, stop: threading.Event, wakeup: _Wakeup) -> None:
        """One lane: claim a delivery when free, carry it out, repeat until `stop`."""
        self._lane.attempts = Attempts(
            self.services,
            self.outbox,
            self.target_factory,
            self.governor,
            self.clock,
            holder=f"{self.worker_id[: heartbeat.WORKER_ID_CHARS - 4]}/{lane}",
        )
        while not stop.is_set():
            seen = wakeup.generation
            try:
                claimed = self.outbox.claim(limit=1)
                for delivery_id in claimed:
                    self.process(delivery_id, stop)
            except Exception:  # keep the lane alive through database outages
                logger.exception("worker.loop_error")
                stop.wait(self.poll_seconds)
                continue
            if claimed:
                wakeup.notify()  # the alert's next delivery may be due now
            else:
                wakeup.wait(seen, self.poll_seconds)

    def process(self, delivery_id: int, stop: threading.Event | None = None) -> None:
        """Carry out one claimed delivery's plan, step by step, committing after each step.

        The delivery's lease is renewed while it is worked on (a call may outlive it), and
        nothing is committed for a delivery whose lease another worker has taken over. Once
        `stop` is set, the delivery is handed back before its next step.
        """
        attempts: Attempts = getattr(self._lane, "attempts", self.attempts)
        with attempts.attempt(delivery_id) as attempt:
            job = attempt.start()
            for done, step in enumerate(attempt.remaining_steps()):
                if stop is not None and stop.is_set():
                    raise HandedBack(
                        f"handed back: the worker stopped after {job.progress} of"
                        f" {len(job.steps)} steps ({done} in this attempt)"
                    )
                ref = self.steps.perform(job, step, before_create=attempt.mark_create_sent)
                attempt.commit(step, ref)
