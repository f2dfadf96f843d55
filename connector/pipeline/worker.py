"""The delivery worker: claim due deliveries in per-alert order, carry out their plans.

One delivery, in three parts: its attempt starts (attempts.py: lease, load, plan, committed before
any call), each step goes to the ticket system (steps.py: route, draft, render, send, through
dispatch.py) and is committed, and the attempt ends however it ended (attempts.py again).

Exactly-once tickets: before a create is sent, its TicketLink is committed as pending_create with
a fresh correlation marker (the ticket's externalID). If the outcome of the create is then lost
(timeout, dropped connection, crash after sending), the next attempt looks the marker up in
Autotask and adopts the ticket it finds instead of creating a second one.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from connector.persistence.models import utcnow
from connector.pipeline.attempts import Attempts
from connector.pipeline.governor import Governor, Limits
from connector.pipeline.outbox import Outbox, RetryPolicy
from connector.pipeline.steps import Faultpoint, StepSender
from connector.services import Services, TargetFactory

logger = logging.getLogger(__name__)

#: Added to the timeouts of an unanswered create before its marker is looked up: the governor's
#: wait for a slot (2 s) and the clocks of two hosts.
CREATE_GUARD_MARGIN_SECONDS = 5.0


class Worker:
    """Claims and processes deliveries; any number may run against one database.

    The ticket targets come from `target_factory`, by default the one the composition root put
    on `services`.
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
    ) -> None:
        settings = services.settings
        self.services = services
        self.target_factory = target_factory or services.targets()
        host_process = f"{socket.gethostname()}:{os.getpid()}"
        self.worker_id = worker_id or f"{host_process}:{uuid.uuid4().hex[:6]}"
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
        #: How long after an unanswered create its call may still be running: the timeouts, the
        #: governor's wait for a slot, and a margin for the clocks of two hosts.
        self.create_guard = timedelta(
            seconds=float(settings["AUTOTASK_CONNECT_TIMEOUT"])
            + float(settings["AUTOTASK_READ_TIMEOUT"])
            + CREATE_GUARD_MARGIN_SECONDS
        )
        self.governor = governor or Governor(services, Limits.from_settings(settings), clock=clock)
        self.attempts = Attempts(services, self.outbox, self.target_factory, self.governor, clock)
        self.steps = StepSender(self.create_guard, clock, self.rng, Faultpoint.from_environment())

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
        """Work until `stop` is set; idle polls wait `poll_seconds`."""
        logger.info("worker.started", extra={"worker_id": self.worker_id})
        try:
            woken = self.wake_throttled()
        except Exception:  # a database not reachable yet: the loop below copes with that
            logger.exception("worker.wake_throttled_failed")
        else:
            if woken:
                logger.info("worker.woke_throttled", extra={"deliveries": woken})
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # keep the loop alive through database outages
                logger.exception("worker.loop_error")
                busy = 0
            if not busy:
                stop.wait(self.poll_seconds)
        logger.info("worker.stopped", extra={"worker_id": self.worker_id})

    def process(self, delivery_id: int) -> None:
        """Carry out one claimed delivery's plan, step by step, committing after each step.

        The delivery's lease is renewed while it is worked on (a call may outlive it), and
        nothing is committed for a delivery whose lease another worker has taken over.
        """
        with self.attempts.attempt(delivery_id) as attempt:
            job = attempt.start()
            for step in attempt.remaining_steps():
                ref = self.steps.perform(job, step, before_create=attempt.mark_create_sent)
                attempt.commit(step, ref)
