"""One attempt at a claimed delivery, as the database sees it: its start, each step, its end.

An attempt holds the delivery's lease (renewed from a thread: a call may outlive it), loads the
delivery and plans it at its first attempt (committed before any call), commits each finished
step, and records how the attempt ended: done, postponed, failed (retried or dead-lettered),
ignored, or, when another worker has taken the delivery over, nothing but the calls made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import IncomingAlert, Outcome, Step, StepKind, TicketRef
from connector.errors import (
    ConfigError,
    RenderError,
    TargetAuthError,
    TargetError,
    TemplateRejected,
)
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.store import load_options
from connector.payloads.requests import DeliveryOptions
from connector.persistence.models import AlertEvent, Delivery, Integration, TicketLink
from connector.pipeline.dispatch import CallLog, Dispatcher, governed_target
from connector.pipeline.governor import Governor, Throttled
from connector.pipeline.ingest import alert_from_json, tenant_routes
from connector.pipeline.latency import observe_alert_to_ticket
from connector.pipeline.outbox import HandedBack, LeaseKeeper, LeaseLost, Outbox
from connector.pipeline.planner import CLOSED_REMOTELY_REASON
from connector.pipeline.routing import NoCompany, TenantRoute
from connector.pipeline.ticketlinks import (
    CreateInFlight,
    apply_step,
    ensure_plan,
    is_closed_remotely,
    remember_a_clear,
    steps_from_json,
)
from connector.ports import TicketTarget
from connector.services import Services, TargetFactory

logger = logging.getLogger(__name__)

#: When a delivery whose call met refused credentials is looked at again; the governor's
#: credentials pause holds it back (attempt unspent) until one delivery may try again.
CREDENTIALS_RETRY_SECONDS = 5.0


@dataclass
class Job:
    """One delivery being worked on: what its steps need, kept between their commits."""

    delivery_id: int
    integration_id: int
    alert: IncomingAlert
    #: When the connector received the event (the ticket's times fall back to it).
    received_at: datetime
    settings: IntegrationSettings
    options: DeliveryOptions
    integration_code: str
    target: TicketTarget
    steps: list[Step]
    progress: int
    fresh_marker: bool
    #: When a create of this ticket was last sent and not yet answered, as far as anyone
    #: recorded (None: never, or its ticket is recorded).
    create_sent_at: datetime | None
    link_id: int | None
    marker: str
    ticket_id: int | None
    ticket_number: str | None
    routes: dict[str, TenantRoute]
    #: Sends the steps' requests and keeps the last exchange for the delivery's record.
    dispatch: Dispatcher
    #: This worker marked a create as sent (and so knows when its call ended).
    create_marked: bool = False


class Attempts:
    """One worker's attempts and what they share: the outbox, the call log, the governed
    targets and the delivery options (both kept until their integration is edited)."""

    def __init__(
        self,
        services: Services,
        outbox: Outbox,
        target_factory: TargetFactory,
        governor: Governor,
        clock: Callable[[], datetime],
        *,
        holder: str | None = None,
    ) -> None:
        self.services = services
        #: Who holds the governor's slots for these attempts' calls (a worker's thread).
        self.holder = holder or outbox.owner
        self.outbox = outbox
        self.target_factory = target_factory
        self.governor = governor
        self.clock = clock
        self.calls = CallLog()
        self._targets: dict[tuple[int, datetime], TicketTarget] = {}
        self._options: dict[tuple[int, datetime], tuple[DeliveryOptions, str]] = {}

    @contextmanager
    def attempt(self, delivery_id: int) -> Iterator[Attempt]:
        """Keep the delivery's lease while the block works on it; record how the attempt ended.

        Whatever the block raises ends the attempt (see Attempt.end): a bug must not kill the
        worker nor lose the delivery.
        """
        self.calls.records.clear()
        self.calls.delivery_id = delivery_id
        attempt = Attempt(self, delivery_id)
        try:
            with attempt.lease.kept():
                yield attempt
        except Exception as e:
            attempt.end(e)

    def target(self, integration: Integration, settings: IntegrationSettings) -> TicketTarget:
        """The integration's governed target."""
        key = (integration.id, integration.updated_at)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = governed_target(
                self.target_factory,
                integration,
                settings,
                self.calls,
                governor=self.governor,
                holder=self.holder,
                profile=self.services.profile(integration.api_flavour),
            )
        return target

    def options(self, session: Session, integration: Integration) -> tuple[DeliveryOptions, str]:
        """The integration's requests and its (decrypted) tracking identifier."""
        key = (integration.id, integration.updated_at)
        cached = self._options.get(key)
        if cached is None:
            code = self.services.secret_box().decrypt(integration.integration_code_encrypted)
            profile = self.services.profile(integration.api_flavour)
            cached = self._options[key] = (load_options(session, integration, profile), code)
        return cached


class Attempt:
    """One worker's attempt at one delivery; every write checks the lease is still its own."""

    def __init__(self, attempts: Attempts, delivery_id: int) -> None:
        self.attempts = attempts
        self.outbox = attempts.outbox
        self.delivery_id = delivery_id
        self.lease = LeaseKeeper(attempts.outbox, delivery_id)
        self.job: Job | None = None

    # -- the start and the steps ----------------------------------------------------------------

    def start(self) -> Job:
        """Load the delivery, plan it at its first attempt, and commit that before any call.

        An empty plan is finished at once. Raises LeaseLost when another worker holds it.
        """
        attempts = self.attempts
        with attempts.services.transaction() as session:
            delivery = self.outbox.owned(session, self.delivery_id)
            # The claim leased the whole batch at once; this delivery's turn comes only now, so
            # its lease starts now (renewed by owned()): otherwise it could run out mid-call and
            # a second worker would send the same create or update.
            if delivery is None:
                raise LeaseLost()
            integration = session.get(Integration, delivery.integration_id)
            event = session.get(AlertEvent, delivery.event_id)
            if integration is None or event is None:
                raise ConfigError("the delivery's integration or event no longer exists")
            settings = load_settings(integration.settings)
            alert = alert_from_json(event.payload)
            options, integration_code = attempts.options(session, integration)
            fresh_marker = ensure_plan(
                session, delivery, alert, settings, attempts.clock(), options
            )
            stored = delivery.plan or {"steps": []}
            link = session.scalar(
                select(TicketLink).where(
                    TicketLink.alert_id == delivery.alert_id,
                    TicketLink.episode == int(stored.get("episode", 1)),
                )
            )
            steps = steps_from_json(stored)
            target = attempts.target(integration, settings)
            job = self.job = Job(
                delivery_id=self.delivery_id,
                integration_id=delivery.integration_id,
                alert=alert,
                received_at=event.received_at,
                settings=settings,
                options=options,
                integration_code=integration_code,
                target=target,
                steps=steps,
                progress=delivery.progress,
                fresh_marker=fresh_marker,
                create_sent_at=link.create_sent_at if link is not None else None,
                link_id=link.id if link is not None else None,
                marker=link.marker if link is not None else "",
                ticket_id=link.ticket_id if link is not None else None,
                ticket_number=link.ticket_number if link is not None else None,
                routes=tenant_routes(session, delivery.integration_id) if steps else {},
                dispatch=Dispatcher(target, [integration_code], options.profile),
            )
            if not steps or is_closed_remotely(link):
                self._record_step(session, job, delivery, None, None)
        return job

    def _started(self) -> Job:
        if self.job is None:
            raise RuntimeError("the attempt has not started")
        return self.job

    def remaining_steps(self) -> Iterator[Step]:
        """The steps still to do, each only while the lease is still this worker's."""
        job = self._started()
        index = job.progress
        # Read afresh at each step: a commit cuts the steps short when the ticket was closed
        # in the ticket system meanwhile (_record_step).
        while index < len(job.steps):
            self.lease.check()
            yield job.steps[index]
            index += 1

    def mark_create_sent(self) -> None:
        """Record (committed) that a create is about to go out, before it goes."""
        job = self._started()
        now = self.attempts.clock()
        with self.attempts.services.transaction() as session:
            owned = self.outbox.owned(session, self.delivery_id)
            link = session.get(TicketLink, job.link_id) if job.link_id is not None else None
            if owned is not None and link is not None:
                link.create_sent_at = now
        if owned is None:
            raise LeaseLost()
        job.create_sent_at = now
        job.create_marked = True

    def commit(self, step: Step, ref: TicketRef | None) -> None:
        """Record a finished step and, after the last, the end of the delivery.

        Raises LeaseLost (recording nothing but the calls) when another worker has taken the
        delivery over: that worker finds a created ticket by its marker.
        """
        job = self._started()
        with self._ending() as (session, delivery):
            if delivery is not None:
                self._record_step(session, job, delivery, step, ref)
        if delivery is None:  # after the commit: the calls made are kept
            raise LeaseLost()
        if step.kind is StepKind.CREATE:
            observe_alert_to_ticket((self.attempts.clock() - job.received_at).total_seconds())

    def _record_step(
        self,
        session: Session,
        job: Job,
        delivery: Delivery,
        step: Step | None,
        ref: TicketRef | None,
    ) -> None:
        """The step's result on the ticket link and the delivery; after the last, the end."""
        link = (
            # Locked: a ticket webhook's callout may be closing this link right now.
            session.get(TicketLink, job.link_id, with_for_update=True)
            if job.link_id is not None
            else None
        )
        closed = is_closed_remotely(link)
        if step is not None and link is not None:
            if not closed:  # a person closed it meanwhile: this step's answer changes nothing
                apply_step(link, step, ref, self.attempts.clock())
            job.ticket_id = link.ticket_id
            job.ticket_number = link.ticket_number
            job.progress += 1
            delivery.progress = job.progress
            delivery.last_request = {
                "step": step.kind.value,
                "ticket_id": link.ticket_id,
                **(job.dispatch.last_request or {}),
            }
            delivery.last_response = job.dispatch.last_response
        if closed and link is not None:
            remember_a_clear(link, job.alert.status)
            if job.progress < len(job.steps):
                # Nothing more goes to a ticket a person closed in the ticket system.
                done = f"after {job.progress} of {len(job.steps)} steps" if job.progress else ""
                stopped = f"stopped {done}: " if done else ""
                self.outbox.finish(
                    delivery, Outcome.IGNORED.value, f"{stopped}{CLOSED_REMOTELY_REASON}"
                )
                del job.steps[job.progress :]
                return
        if job.progress >= len(job.steps):
            plan = delivery.plan or {}
            outcome = plan.get("outcome") or Outcome.IGNORED.value
            if link is not None and outcome != Outcome.IGNORED.value:
                link.applied_status = job.alert.status.value
                if plan.get("applies_severity"):
                    link.applied_severity = job.alert.severity.value
            self.outbox.finish(delivery, outcome, plan.get("reason") or None)

    # -- the end --------------------------------------------------------------------------------

    def end(self, error: Exception) -> None:
        """Record how an attempt that raised `error` ended (called while handling it)."""
        if isinstance(error, LeaseLost):
            self._lease_lost()
        elif isinstance(error, Throttled):
            self._postpone(error.retry_after or 0.0, str(error))
        elif isinstance(error, HandedBack):
            self._postpone(0.0, str(error), keep_last_error=True)
        elif isinstance(error, CreateInFlight):
            self._postpone((error.until - self.attempts.clock()).total_seconds(), str(error))
        elif isinstance(error, TargetAuthError):
            # Not this delivery's fault: the governor paused the integration; the delivery
            # waits, attempt unspent, and goes once the credentials are accepted again.
            self._postpone(CREDENTIALS_RETRY_SECONDS, str(error))
        elif isinstance(error, TargetError):
            self._failed(str(error), error.retryable, error)
        elif isinstance(error, (RenderError, TemplateRejected)):
            # The saved template cannot carry this alert: retrying cannot help.
            self._failed(f"template: {error}", False)
        elif isinstance(error, NoCompany):
            self._ignored(str(error))
        elif isinstance(error, ConfigError):
            self._failed(f"configuration: {error}", True)
        else:
            logger.exception("worker.unexpected_error", extra={"delivery_id": self.delivery_id})
            self._failed(f"internal error: {error!r}", True)

    @contextmanager
    def _ending(self) -> Iterator[tuple[Session, Delivery | None]]:
        """A transaction that stores the calls made and gives the delivery if still this
        worker's (None when another worker has taken it over)."""
        with self.attempts.services.transaction() as session:
            if self.job is not None:
                self.attempts.calls.store_in(session, self.job.integration_id)
            yield session, self.outbox.owned(session, self.delivery_id)

    def _lease_lost(self) -> None:
        """Keep the calls made (they count against Autotask's limits); write nothing else."""
        logger.warning(
            "delivery.lease_lost",
            extra={"delivery_id": self.delivery_id, "worker_id": self.outbox.owner},
        )
        if self.job is not None and self.attempts.calls.records:
            with self.attempts.services.transaction() as session:
                self.attempts.calls.store_in(session, self.job.integration_id)

    def _create_call_ended(self, session: Session) -> None:
        """This worker's create got no ticket, but its call is over: nothing is in flight."""
        job = self.job
        if job is not None and job.create_marked and job.link_id is not None:
            link = session.get(TicketLink, job.link_id)
            if link is not None:
                link.create_sent_at = None

    def _ignored(self, reason: str) -> None:
        with self._ending() as (_, delivery):
            if delivery is not None:
                self.outbox.finish(delivery, Outcome.IGNORED.value, f"no ticket: {reason}")

    def _postpone(self, wait: float, why: str, *, keep_last_error: bool = False) -> None:
        """Try again in `wait` seconds; the attempt is not spent and it is never dead for it.

        For the governor holding a call back, a create that may still be in flight, or a
        worker stopping (nothing went wrong: the last error stays as it was).
        """
        with self._ending() as (session, delivery):
            if delivery is None:
                return
            self._create_call_ended(session)  # held back before it went, if it was a create
            self.outbox.postpone(delivery, wait, None if keep_last_error else why)
        logger.info(
            "delivery.postponed",
            extra={"delivery_id": self.delivery_id, "error": why, "wait": wait},
        )

    def _failed(self, message: str, retryable: bool, error: TargetError | None = None) -> None:
        """A failed attempt: retried or dead-lettered; a target's error keeps its exchange."""
        with self._ending() as (session, delivery):
            if delivery is None:
                logger.warning(
                    "delivery.failure_not_recorded",
                    extra={
                        "delivery_id": self.delivery_id,
                        "error": message,
                        "reason": "lease lost",
                    },
                )
                return
            self._create_call_ended(session)
            response = error.response if error is not None else None
            delivery.last_response = dict(response) if response is not None else None
            if error is not None and self.job is not None and self.job.dispatch.last_request:
                delivery.last_request = self.job.dispatch.last_request
            self.outbox.fail(
                delivery,
                message,
                retryable=retryable,
                retry_after=error.retry_after if error is not None else None,
                max_attempts=error.max_attempts if error is not None else None,
            )
