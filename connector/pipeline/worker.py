"""The delivery worker: claim due deliveries in per-alert order, plan, call Autotask, record.

Exactly-once tickets: before a create is sent, its TicketLink is committed as pending_create with
a fresh correlation marker (the ticket's externalID). If the outcome of the create is then lost
(timeout, dropped connection, crash after sending), the next attempt looks the marker up in
Autotask and adopts the ticket it finds instead of creating a second one.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import (
    IncomingAlert,
    Outcome,
    RequestAction,
    Step,
    StepKind,
    TicketDraft,
    TicketRef,
)
from connector.errors import (
    ConfigError,
    RenderError,
    TargetAuthError,
    TargetError,
    TemplateRejected,
)
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.store import load_options
from connector.payloads.context import RenderContext
from connector.payloads.requests import DeliveryOptions, RequestSpec
from connector.persistence.models import AlertEvent, Delivery, Integration, TicketLink, utcnow
from connector.pipeline.dispatch import CallLog, Dispatcher, governed_target
from connector.pipeline.governor import Governor, Limits, Throttled
from connector.pipeline.ingest import alert_from_json, tenant_routes
from connector.pipeline.outbox import LeaseKeeper, LeaseLost, Outbox, RetryPolicy
from connector.pipeline.routing import TenantRoute, build_draft, route_company
from connector.pipeline.ticketlinks import (
    CreateInFlight,
    apply_step,
    ensure_plan,
    steps_from_json,
    wait_out_a_create_in_flight,
)
from connector.ports import TicketTarget
from connector.services import Services, TargetFactory

logger = logging.getLogger(__name__)

#: Which request carries each step: the event's status picks the request, the step its action.
STEP_ACTIONS = {
    StepKind.CREATE: RequestAction.CREATE,
    StepKind.NOTE: RequestAction.NOTE,
    StepKind.SET_STATUS: RequestAction.UPDATE,
    StepKind.SET_PRIORITY: RequestAction.UPDATE,
    StepKind.COMPLETE: RequestAction.UPDATE,
    StepKind.REOPEN: RequestAction.UPDATE,
}

#: When a delivery whose call met refused credentials is looked at again; the governor's
#: credentials pause holds it back (attempt unspent) until one delivery may try again.
CREDENTIALS_RETRY_SECONDS = 5.0

#: Added to the timeouts of an unanswered create before its marker is looked up: the governor's
#: wait for a slot (2 s) and the clocks of two hosts.
CREATE_GUARD_MARGIN_SECONDS = 5.0

#: Test-only crash point: CONNECTOR_FAULTPOINT=after_create:<probability> kills the process with
#: SIGKILL after Autotask answered a create and before the answer is committed.
FAULTPOINT_ENV = "CONNECTOR_FAULTPOINT"


@dataclass
class _Job:
    """One delivery being worked on: what the steps need, kept between their commits."""

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


class _Dropped(Exception):
    """The alert's routing no longer yields a company (mapping changed since ingest)."""


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
        self.calls = CallLog()
        self._targets: dict[tuple[int, datetime], TicketTarget] = {}
        self._options: dict[tuple[int, datetime], tuple[DeliveryOptions, str]] = {}
        self._faultpoint = _parse_faultpoint(os.environ.get(FAULTPOINT_ENV, ""))
        self.governor = governor or Governor(services, Limits.from_settings(settings), clock=clock)
        self._job: _Job | None = None

    # -- the loop -------------------------------------------------------------------------------

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

    # -- processing ---------------------------------------------------------------------------

    def _target(self, integration: Integration, settings: IntegrationSettings) -> TicketTarget:
        """The integration's governed target, kept until the integration is edited."""
        key = (integration.id, integration.updated_at)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = governed_target(
                self.target_factory,
                integration,
                settings,
                self.calls,
                governor=self.governor,
                holder=self.worker_id,
                profile=self.services.profile(integration.api_flavour),
            )
        return target

    def process(self, delivery_id: int) -> None:
        """Carry out one claimed delivery's plan, step by step, committing after each step.

        The delivery's lease is renewed while it is worked on (a call may outlive it), and
        nothing is committed for a delivery whose lease another worker has taken over.
        """
        self.calls.records.clear()
        self.calls.delivery_id = delivery_id
        self._job = None
        integration_id = 0
        lease = LeaseKeeper(self.outbox, delivery_id)
        try:
            with lease.kept():
                job = self._job = self._start(delivery_id)
                if job is None:
                    return  # the lease was lost to another worker
                integration_id = job.integration_id
                if not job.steps:
                    self._commit_step(job, None, None)
                for index in range(job.progress, len(job.steps)):
                    step = job.steps[index]
                    lease.check()
                    ref = self._call_target(job, step)
                    self._commit_step(job, step, ref)
        except LeaseLost:
            self._lease_lost(delivery_id, integration_id)
        except Throttled as e:
            self._postpone(delivery_id, integration_id, e.retry_after or 0.0, str(e))
        except CreateInFlight as e:
            wait = (e.until - self.clock()).total_seconds()
            self._postpone(delivery_id, integration_id, wait, str(e))
        except TargetAuthError as e:
            # Not this delivery's fault: the governor paused the integration; the delivery
            # waits, attempt unspent, and goes once the credentials are accepted again.
            self._postpone(delivery_id, integration_id, CREDENTIALS_RETRY_SECONDS, str(e))
        except TargetError as e:
            self._failed(delivery_id, integration_id, str(e), e.retryable, e)
        except (RenderError, TemplateRejected) as e:
            # The saved template cannot carry this alert: retrying cannot help.
            self._failed(delivery_id, integration_id, f"template: {e}", False)
        except _Dropped as e:
            self._ignored(delivery_id, integration_id, str(e))
        except ConfigError as e:
            self._failed(delivery_id, integration_id, f"configuration: {e}", True)
        except Exception as e:  # a bug must not kill the worker nor lose the delivery
            logger.exception("worker.unexpected_error", extra={"delivery_id": delivery_id})
            self._failed(delivery_id, integration_id, f"internal error: {e!r}", True)

    @contextmanager
    def _ending(
        self, delivery_id: int, integration_id: int
    ) -> Iterator[tuple[Session, Delivery | None]]:
        """A transaction that stores the calls made and gives the delivery if still this
        worker's (None when another worker has taken it over)."""
        with self.services.transaction() as session:
            if integration_id:
                self.calls.store_in(session, integration_id)
            yield session, self.outbox.owned(session, delivery_id)

    def _lease_lost(self, delivery_id: int, integration_id: int) -> None:
        """Keep the calls made (they count against Autotask's limits); write nothing else."""
        logger.warning(
            "delivery.lease_lost",
            extra={"delivery_id": delivery_id, "worker_id": self.worker_id},
        )
        if integration_id and self.calls.records:
            with self.services.transaction() as session:
                self.calls.store_in(session, integration_id)

    def _start(self, delivery_id: int) -> _Job | None:
        """Load the delivery, plan it at its first attempt, and commit that before any call."""
        with self.services.transaction() as session:
            delivery = self.outbox.owned(session, delivery_id)
            # The claim leased the whole batch at once; this delivery's turn comes only now, so
            # its lease starts now (renewed by owned()): otherwise it could run out mid-call and
            # a second worker would send the same create or update.
            if delivery is None:
                return None
            integration = session.get(Integration, delivery.integration_id)
            event = session.get(AlertEvent, delivery.event_id)
            if integration is None or event is None:
                raise ConfigError("the delivery's integration or event no longer exists")
            settings = load_settings(integration.settings)
            alert = alert_from_json(event.payload)
            fresh_marker = ensure_plan(session, delivery, alert, settings, self.clock())
            stored = delivery.plan or {"steps": []}
            episode = int(stored.get("episode", 1))
            link = session.scalar(
                select(TicketLink).where(
                    TicketLink.alert_id == delivery.alert_id, TicketLink.episode == episode
                )
            )
            steps = steps_from_json(stored)
            options, integration_code = self._delivery_options(session, integration)
            target = self._target(integration, settings)
            return _Job(
                delivery_id=delivery_id,
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

    def _delivery_options(
        self, session: Session, integration: Integration
    ) -> tuple[DeliveryOptions, str]:
        """The integration's requests and its (decrypted) tracking identifier, cached per edit."""
        key = (integration.id, integration.updated_at)
        cached = self._options.get(key)
        if cached is None:
            code = self.services.secret_box().decrypt(integration.integration_code_encrypted)
            profile = self.services.profile(integration.api_flavour)
            cached = self._options[key] = (load_options(session, integration, profile), code)
        return cached

    def _call_target(self, job: _Job, step: Step) -> TicketRef | None:
        """Send the step's delivery request; return the ticket a create made (or found)."""
        route = route_company(job.alert, job.settings, job.routes)
        if step.kind is StepKind.CREATE:
            if job.ticket_id is not None:
                return TicketRef(job.ticket_id)  # an earlier attempt created and recorded it
            if route.company_id is None:
                raise _Dropped(route.dropped or "no company")
            ref = None
            if not job.fresh_marker:
                wait_out_a_create_in_flight(
                    job.create_sent_at, self.create_guard, job.marker, self.clock()
                )
                ref = job.target.find_ticket_by_marker(job.marker)
            if ref is None:
                spec, context = self._request(job, step, route.company_id)
                ref = job.dispatch.create(
                    spec, context, job.alert.status, before_send=lambda: self._mark_create_sent(job)
                )
                self._hit_faultpoint("after_create")
            return ref
        if job.ticket_id is None:
            raise ConfigError(f"step {step.kind.value} needs a ticket, and the alert has none")
        spec, context = self._request(job, step, route.company_id)
        job.dispatch.send(spec, context, job.alert.status)
        return None

    def _request(
        self, job: _Job, step: Step, company_id: int | None
    ) -> tuple[RequestSpec, RenderContext]:
        """The step's request (the event's status picks it) and what it is rendered with."""
        spec = job.options.request_for(job.alert.status, STEP_ACTIONS[step.kind])
        ticket = TicketRef(job.ticket_id, job.ticket_number) if job.ticket_id is not None else None
        context = RenderContext.build(
            job.alert,
            settings=job.settings,
            draft=self._draft(job, company_id, step) if company_id is not None else None,
            step=step,
            ticket=ticket,
            marker=job.marker,
            integration_code=job.integration_code,
            zone_url=job.target.endpoint_url(),
        )
        return spec, context

    def _draft(self, job: _Job, company_id: int, step: Step) -> TicketDraft:
        return build_draft(
            job.alert,
            company_id=company_id,
            status=step.status or job.settings.status_map[job.alert.status],
            marker=job.marker,
            settings=job.settings,
            received_at=job.received_at,
            limits=job.options.profile.ticket_limits,
        )

    def _mark_create_sent(self, job: _Job) -> None:
        """Record (committed) that a create is about to go out, before it goes."""
        now = self.clock()
        with self.services.transaction() as session:
            owned = self.outbox.owned(session, job.delivery_id)
            link = session.get(TicketLink, job.link_id) if job.link_id is not None else None
            if owned is not None and link is not None:
                link.create_sent_at = now
        if owned is None:
            raise LeaseLost()
        job.create_sent_at = now
        job.create_marked = True

    def _create_call_ended(self, session: Session) -> None:
        """This worker's create got no ticket, but its call is over: nothing is in flight."""
        job = self._job
        if job is not None and job.create_marked and job.link_id is not None:
            link = session.get(TicketLink, job.link_id)
            if link is not None:
                link.create_sent_at = None

    def _commit_step(self, job: _Job, step: Step | None, ref: TicketRef | None) -> None:
        """Record a finished step (or, for an empty plan, nothing) and, after the last, the end.

        Raises LeaseLost (recording nothing but the calls) when another worker has taken the
        delivery over: that worker finds a created ticket by its marker.
        """
        now = self.clock()
        with self._ending(job.delivery_id, job.integration_id) as (session, delivery):
            if delivery is not None:
                self._record_step(session, job, delivery, step, ref, now)
        if delivery is None:  # after the commit: the calls made are kept
            raise LeaseLost()

    def _record_step(
        self,
        session: Session,
        job: _Job,
        delivery: Delivery,
        step: Step | None,
        ref: TicketRef | None,
        now: datetime,
    ) -> None:
        """The step's result on the ticket link and the delivery; after the last, the end."""
        link = session.get(TicketLink, job.link_id) if job.link_id is not None else None
        if step is not None and link is not None:
            apply_step(link, step, ref, now)
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
        if job.progress >= len(job.steps):
            plan = delivery.plan or {}
            outcome = plan.get("outcome") or Outcome.IGNORED.value
            if link is not None and outcome != Outcome.IGNORED.value:
                link.applied_status = job.alert.status.value
                if plan.get("applies_severity"):
                    link.applied_severity = job.alert.severity.value
            self.outbox.finish(delivery, outcome, plan.get("reason") or None)

    def _ignored(self, delivery_id: int, integration_id: int, reason: str) -> None:
        with self._ending(delivery_id, integration_id) as (_, delivery):
            if delivery is not None:
                self.outbox.finish(delivery, Outcome.IGNORED.value, f"no ticket: {reason}")

    def _postpone(self, delivery_id: int, integration_id: int, wait: float, why: str) -> None:
        """Try again in `wait` seconds; the attempt is not spent and it is never dead for it.

        For the governor holding a call back, or a create that may still be in flight.
        """
        with self._ending(delivery_id, integration_id) as (session, delivery):
            if delivery is None:
                return
            self._create_call_ended(session)  # held back before it went, if it was a create
            self.outbox.postpone(delivery, wait, why)
        logger.info(
            "delivery.postponed", extra={"delivery_id": delivery_id, "error": why, "wait": wait}
        )

    def _failed(
        self,
        delivery_id: int,
        integration_id: int,
        message: str,
        retryable: bool,
        error: TargetError | None = None,
    ) -> None:
        """A failed attempt: retried or dead-lettered; a target's error keeps its exchange."""
        with self._ending(delivery_id, integration_id) as (session, delivery):
            if delivery is None:
                logger.warning(
                    "delivery.failure_not_recorded",
                    extra={"delivery_id": delivery_id, "error": message, "reason": "lease lost"},
                )
                return
            self._create_call_ended(session)
            response = error.response if error is not None else None
            delivery.last_response = dict(response) if response is not None else None
            if error is not None and self._job is not None and self._job.dispatch.last_request:
                delivery.last_request = self._job.dispatch.last_request
            self.outbox.fail(
                delivery,
                message,
                retryable=retryable,
                retry_after=error.retry_after if error is not None else None,
                max_attempts=error.max_attempts if error is not None else None,
            )

    def _hit_faultpoint(self, name: str) -> None:
        point, probability = self._faultpoint
        if point == name and self.rng.random() < probability:
            os.kill(os.getpid(), signal.SIGKILL)


def _parse_faultpoint(raw: str) -> tuple[str, float]:
    if not raw:
        return "", 0.0
    name, _, probability = raw.partition(":")
    return name, float(probability or 1.0)
