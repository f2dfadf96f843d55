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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, aliased

from connector.domain import (
    AlertStatus,
    ApiCallRecord,
    IncomingAlert,
    Outcome,
    Plan,
    RequestAction,
    Severity,
    Step,
    StepKind,
    TargetResponse,
    TicketDraft,
    TicketRef,
    TicketSnapshot,
    TicketState,
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
from connector.payloads.extraction import extract_ticket_id
from connector.payloads.requests import DeliveryOptions, render_request, request_json
from connector.persistence.models import AlertEvent, Delivery, Integration, TicketLink, utcnow
from connector.pipeline import planner
from connector.pipeline.activity import store_api_calls
from connector.pipeline.governor import (
    THROTTLED_PREFIX,
    GovernedTarget,
    Governor,
    Limits,
    Throttled,
)
from connector.pipeline.ingest import alert_from_json, tenant_routes
from connector.pipeline.routing import TenantRoute, build_draft, route_company
from connector.ports import CallRecorder, TicketTarget
from connector.services import Services

logger = logging.getLogger(__name__)

#: Builds the ticket target of an integration; the recorder receives every call it makes.
TargetFactory = Callable[[Integration, IntegrationSettings, CallRecorder], TicketTarget]

UNFINISHED = ("pending", "in_progress")

#: How much of Autotask's answer a delivery keeps (the full answer is in Autotask's own log).
RESPONSE_KEEP_CHARS = 4000

#: Which request carries each step: the event's status picks the request, the step its action.
STEP_ACTIONS = {
    StepKind.CREATE: RequestAction.CREATE,
    StepKind.NOTE: RequestAction.NOTE,
    StepKind.SET_STATUS: RequestAction.UPDATE,
    StepKind.SET_PRIORITY: RequestAction.UPDATE,
    StepKind.COMPLETE: RequestAction.UPDATE,
    StepKind.REOPEN: RequestAction.UPDATE,
}

#: Delivery.outcome of a dead-lettered delivery (it did not do what its plan said).
FAILED = "failed"

#: When a delivery whose call met refused credentials is looked at again; the governor's
#: credentials pause holds it back (attempt unspent) until one delivery may try again.
CREDENTIALS_RETRY_SECONDS = 5.0

#: Added to the timeouts of an unanswered create before its marker is looked up: the governor's
#: wait for a slot (2 s) and the clocks of two hosts.
CREATE_GUARD_MARGIN_SECONDS = 5.0

#: Test-only crash point: CONNECTOR_FAULTPOINT=after_create:<probability> kills the process with
#: SIGKILL after Autotask answered a create and before the answer is committed.
FAULTPOINT_ENV = "CONNECTOR_FAULTPOINT"


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between attempts: the schedule (last entry repeats) with ± jitter."""

    delays: Sequence[float]
    jitter: float = 0.2

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        base = float(self.delays[min(max(attempts, 1), len(self.delays)) - 1])
        spread = base * self.jitter
        wait = base + rng.uniform(-spread, spread)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return max(wait, 0.0)


def plan_to_json(decided: Plan, episode: int) -> dict[str, Any]:
    """The plan as stored on the delivery."""
    return {
        "outcome": decided.outcome.value,
        "reason": decided.reason,
        "episode": episode,
        "applies_severity": decided.applies_severity,
        "steps": [
            {
                "kind": s.kind.value,
                "status": s.status,
                "priority": s.priority,
                "title": s.title,
                "text": s.text,
            }
            for s in decided.steps
        ],
    }


def steps_from_json(stored: dict[str, Any]) -> list[Step]:
    """The stored steps (plans stored before priorities existed have none)."""
    return [
        Step(
            StepKind(s["kind"]),
            status=s["status"],
            title=s["title"],
            text=s["text"],
            priority=s.get("priority"),
        )
        for s in stored["steps"]
    ]


def snapshot(link: TicketLink | None) -> TicketSnapshot | None:
    """The planner's view of a TicketLink."""
    if link is None:
        return None
    return TicketSnapshot(
        state=TicketState(link.state),
        ticket_id=link.ticket_id,
        applied_status=AlertStatus(link.applied_status) if link.applied_status else None,
        completed_at=link.completed_at,
        last_note_at=link.last_note_at,
        opened_at=link.created_at,
        applied_severity=Severity(link.applied_severity) if link.applied_severity else None,
        priority=link.ticket_priority,
    )


def latest_link(session: Session, alert_id: int) -> TicketLink | None:
    """The alert's newest ticket episode."""
    return session.scalar(
        select(TicketLink)
        .where(TicketLink.alert_id == alert_id)
        .order_by(TicketLink.episode.desc())
        .limit(1)
    )


def new_marker() -> str:
    """A correlation marker for the ticket's externalID (Autotask allows 50 characters)."""
    return f"aac-{uuid.uuid4().hex}"


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
    #: The last request sent (or about to be) and its answer, for the delivery's record.
    last_request: dict[str, Any] | None = None
    last_response: dict[str, Any] | None = None
    #: This worker marked a create as sent (and so knows when its call ended).
    create_marked: bool = False


def _apply(link: TicketLink, step: Step, ref: TicketRef | None, now: datetime) -> None:
    """What a finished step changes in the ticket link."""
    if ref is not None:
        link.state = TicketState.OPEN.value
        link.ticket_id = ref.ticket_id
        link.ticket_number = ref.ticket_number or link.ticket_number
        link.ticket_status = ref.status if ref.status is not None else step.status
        link.ticket_priority = step.priority if step.priority is not None else link.ticket_priority
        link.create_sent_at = None  # answered: no create of this ticket is in flight
    elif step.kind is StepKind.NOTE:
        link.last_note_at = now
    elif step.kind is StepKind.SET_PRIORITY:
        link.ticket_priority = step.priority
    elif step.kind is StepKind.COMPLETE:
        link.state = TicketState.COMPLETED.value
        link.completed_at = now
        link.ticket_status = step.status
    else:  # SET_STATUS, REOPEN
        link.state = TicketState.OPEN.value
        link.completed_at = None
        link.ticket_status = step.status


class _Dropped(Exception):
    """The alert's routing no longer yields a company (mapping changed since ingest)."""


class _LeaseLost(Exception):
    """Another worker took the delivery over (this one's lease ran out): leave it to that one."""


class _CreateInFlight(Exception):
    """An unanswered create of the ticket may still be in flight: look its marker up later."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class Worker:
    """Claims and processes deliveries; any number may run against one database."""

    def __init__(
        self,
        services: Services,
        target_factory: TargetFactory,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        governor: Governor | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.target_factory = target_factory
        host_process = f"{socket.gethostname()}:{os.getpid()}"
        self.worker_id = worker_id or f"{host_process}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 -- retry jitter, not security
        self.lease = timedelta(seconds=float(settings["WORKER_LEASE_SECONDS"]))
        self.batch = int(settings["WORKER_BATCH"])
        self.poll_seconds = float(settings["WORKER_POLL_SECONDS"])
        self.retry = RetryPolicy(tuple(settings["RETRY_DELAYS"]), float(settings["RETRY_JITTER"]))
        #: How long after an unanswered create its call may still be running: the timeouts, the
        #: governor's wait for a slot, and a margin for the clocks of two hosts.
        self.create_guard = timedelta(
            seconds=float(settings["AUTOTASK_CONNECT_TIMEOUT"])
            + float(settings["AUTOTASK_READ_TIMEOUT"])
            + CREATE_GUARD_MARGIN_SECONDS
        )
        self._calls: list[ApiCallRecord] = []
        self._targets: dict[tuple[int, datetime], TicketTarget] = {}
        self._options: dict[tuple[int, datetime], tuple[DeliveryOptions, str]] = {}
        self._faultpoint = _parse_faultpoint(os.environ.get(FAULTPOINT_ENV, ""))
        self.governor = governor or Governor(services, Limits.from_settings(settings), clock=clock)
        self._job: _Job | None = None

    # -- claiming ---------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Lease up to `batch` due deliveries, oldest first, never two of one alert at once."""
        now = self.clock()
        earlier = aliased(Delivery)
        blocked = exists().where(
            earlier.alert_id == Delivery.alert_id,
            earlier.id < Delivery.id,
            earlier.state.in_(UNFINISHED),
        )
        due = or_(
            and_(Delivery.state == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.state == "in_progress", Delivery.lease_expires_at < now),
        )
        with self.services.transaction() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(due, ~blocked)
                    .order_by(Delivery.id)
                    .limit(self.batch)
                    # PostgreSQL: workers on any host share the queue without waiting on each
                    # other. SQLite ignores it; its BEGIN IMMEDIATE serializes claims instead.
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            )
            if ids:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        state="in_progress",
                        lease_owner=self.worker_id,
                        lease_expires_at=now + self.lease,
                        attempts=Delivery.attempts + 1,
                    )
                )
        return ids

    def run_once(self) -> int:
        """Claim and process one batch; return how many deliveries were processed."""
        ids = self.claim()
        for delivery_id in ids:
            self.process(delivery_id)
        return len(ids)

    def wake_throttled(self) -> int:
        """Make deliveries the governor held back due now; return how many.

        Their wait was computed under the limits of the worker that held them back; a worker
        starting (perhaps with a raised API_HOURLY_CEILING) looks again rather than leaving them
        asleep for up to an hour. A delivery still over the limits is simply held back again.
        """
        now = self.clock()
        with self.services.transaction() as session:
            woken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(Delivery)
                .where(
                    Delivery.state == "pending",
                    Delivery.next_attempt_at > now,
                    Delivery.last_error.startswith(THROTTLED_PREFIX),
                )
                .values(next_attempt_at=now)
            )
        return int(woken.rowcount or 0)

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

    def _record(self, record: ApiCallRecord) -> None:
        self._calls.append(record)

    def _flush_calls(self, session: Session, integration_id: int, delivery_id: int | None) -> None:
        if self._calls:
            store_api_calls(session, self._calls, integration_id, delivery_id)
            self._calls.clear()

    def _target(self, integration: Integration, settings: IntegrationSettings) -> TicketTarget:
        """The integration's target, governed: each call is admitted, then stored at once.

        Storing each call's record as it ends (not with the step) keeps the hourly budget,
        which is counted from the stored records, right for every worker sharing the database.
        """
        key = (integration.id, integration.updated_at)
        target = self._targets.get(key)
        if target is None:
            integration_id = integration.id

            def store(session: Session) -> None:
                job = self._job
                self._flush_calls(session, integration_id, job.delivery_id if job else None)

            target = GovernedTarget(
                self.target_factory(integration, settings, self._record),
                self.governor,
                integration_id,
                self.worker_id,
                store,
                profile=self.services.profile(integration.api_flavour),
            )
            self._targets[key] = target
        return target

    def _job_request(self) -> dict[str, Any] | None:
        return self._job.last_request if self._job is not None else None

    def process(self, delivery_id: int) -> None:
        """Carry out one claimed delivery's plan, step by step, committing after each step.

        The delivery's lease is renewed while it is worked on (a call may outlive it), and
        nothing is committed for a delivery whose lease another worker has taken over.
        """
        self._calls.clear()
        self._job = None
        integration_id = 0
        lease = _LeaseKeeper(self, delivery_id)
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
        except _LeaseLost:
            self._lease_lost(delivery_id, integration_id)
        except Throttled as e:
            self._postpone(delivery_id, integration_id, e.retry_after or 0.0, str(e))
        except _CreateInFlight as e:
            wait = (e.until - self.clock()).total_seconds()
            self._postpone(delivery_id, integration_id, wait, str(e))
        except TargetAuthError as e:
            # Not this delivery's fault: the governor paused the integration; the delivery
            # waits, attempt unspent, and goes once the credentials are accepted again.
            self._postpone(delivery_id, integration_id, CREDENTIALS_RETRY_SECONDS, str(e))
        except TargetError as e:
            self._failed(
                delivery_id,
                integration_id,
                str(e),
                e.retryable,
                e.response,
                e.retry_after,
                request=self._job_request(),
                max_attempts=e.max_attempts,
            )
        except (RenderError, TemplateRejected) as e:
            # The saved template cannot carry this alert: retrying cannot help.
            self._failed(delivery_id, integration_id, f"template: {e}", False, None, None)
        except _Dropped as e:
            self._ignored(delivery_id, integration_id, str(e))
        except ConfigError as e:
            self._failed(delivery_id, integration_id, f"configuration: {e}", True, None, None)
        except Exception as e:  # a bug must not kill the worker nor lose the delivery
            logger.exception("worker.unexpected_error", extra={"delivery_id": delivery_id})
            self._failed(delivery_id, integration_id, f"internal error: {e!r}", True, None, None)

    def renew_lease(self, session: Session, delivery_id: int) -> bool:
        """Extend this worker's lease on the delivery; False when it is no longer this worker's.

        A conditional UPDATE, so it also locks the row for the rest of the transaction: no other
        worker can claim the delivery between this check and the commit.
        """
        renewed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.lease_owner == self.worker_id,
                Delivery.state == "in_progress",
            )
            .values(lease_expires_at=self.clock() + self.lease)
            .execution_options(synchronize_session=False)
        )
        return renewed.rowcount == 1

    def _owned(self, session: Session, delivery_id: int) -> Delivery | None:
        """The delivery, with its lease renewed, if this worker still holds it; else None."""
        if not self.renew_lease(session, delivery_id):
            return None
        return session.get(Delivery, delivery_id, populate_existing=True)

    def _lease_lost(self, delivery_id: int, integration_id: int) -> None:
        """Keep the calls made (they count against Autotask's limits); write nothing else."""
        logger.warning(
            "delivery.lease_lost",
            extra={"delivery_id": delivery_id, "worker_id": self.worker_id},
        )
        if integration_id and self._calls:
            with self.services.transaction() as session:
                self._flush_calls(session, integration_id, delivery_id)

    def _start(self, delivery_id: int) -> _Job | None:
        """Load the delivery, plan it at its first attempt, and commit that before any call."""
        with self.services.transaction() as session:
            delivery = self._owned(session, delivery_id)
            # The claim leased the whole batch at once; this delivery's turn comes only now, so
            # its lease starts now (renewed by _owned): otherwise it could run out mid-call and a
            # second worker would send the same create or update.
            if delivery is None:
                return None
            integration = session.get(Integration, delivery.integration_id)
            event = session.get(AlertEvent, delivery.event_id)
            if integration is None or event is None:
                raise ConfigError("the delivery's integration or event no longer exists")
            settings = load_settings(integration.settings)
            alert = alert_from_json(event.payload)
            fresh_marker = self._ensure_plan(session, delivery, alert, settings)
            stored = delivery.plan or {"steps": []}
            episode = int(stored.get("episode", 1))
            link = session.scalar(
                select(TicketLink).where(
                    TicketLink.alert_id == delivery.alert_id, TicketLink.episode == episode
                )
            )
            steps = steps_from_json(stored)
            options, integration_code = self._delivery_options(session, integration)
            return _Job(
                delivery_id=delivery_id,
                integration_id=delivery.integration_id,
                alert=alert,
                received_at=event.received_at,
                settings=settings,
                options=options,
                integration_code=integration_code,
                target=self._target(integration, settings),
                steps=steps,
                progress=delivery.progress,
                fresh_marker=fresh_marker,
                create_sent_at=link.create_sent_at if link is not None else None,
                link_id=link.id if link is not None else None,
                marker=link.marker if link is not None else "",
                ticket_id=link.ticket_id if link is not None else None,
                ticket_number=link.ticket_number if link is not None else None,
                routes=tenant_routes(session, delivery.integration_id) if steps else {},
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
                self._wait_out_a_create_in_flight(job)
                ref = job.target.find_ticket_by_marker(job.marker)
            if ref is None:
                ref = self._create(job, step, self._draft(job, route.company_id, step))
                self._hit_faultpoint("after_create")
            return ref
        if job.ticket_id is None:
            raise ConfigError(f"step {step.kind.value} needs a ticket, and the alert has none")
        draft = self._draft(job, route.company_id, step) if route.company_id is not None else None
        self._send(job, step, draft)
        return None

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

    def _wait_out_a_create_in_flight(self, job: _Job) -> None:
        """Postpone the marker lookup while an unanswered create may still be on its way.

        A create is sent with its marker; if the worker that sent it died or lost the delivery
        before recording the answer, Autotask may still be making that ticket. Looked up too
        early, the marker is not found and a second ticket is made: so the lookup waits until
        that call must have ended (its timeouts, the governor's wait, a margin).
        """
        sent = job.create_sent_at
        if sent is None:
            return
        until = sent + self.create_guard
        if self.clock() < until:
            raise _CreateInFlight(
                f"waiting: a create of this ticket was sent at {sent.isoformat()} and never"
                f" answered; its marker {job.marker} is looked up at {until.isoformat()}, once"
                " that call must have ended",
                until,
            )

    def _mark_create_sent(self, job: _Job) -> None:
        """Record (committed) that a create is about to go out, before it goes."""
        now = self.clock()
        with self.services.transaction() as session:
            owned = self._owned(session, job.delivery_id)
            link = session.get(TicketLink, job.link_id) if job.link_id is not None else None
            if owned is not None and link is not None:
                link.create_sent_at = now
        if owned is None:
            raise _LeaseLost()
        job.create_sent_at = now
        job.create_marked = True

    def _create_call_ended(self, session: Session) -> None:
        """This worker's create got no ticket, but its call is over: nothing is in flight."""
        job = self._job
        if job is not None and job.create_marked and job.link_id is not None:
            link = session.get(TicketLink, job.link_id)
            if link is not None:
                link.create_sent_at = None

    def _send(
        self, job: _Job, step: Step, draft: TicketDraft | None, *, create: bool = False
    ) -> TargetResponse:
        """Render the step's request (the event's status picks it) and send it."""
        spec = job.options.request_for(job.alert.status, STEP_ACTIONS[step.kind])
        ticket = TicketRef(job.ticket_id, job.ticket_number) if job.ticket_id is not None else None
        context = RenderContext.build(
            job.alert,
            settings=job.settings,
            draft=draft,
            step=step,
            ticket=ticket,
            marker=job.marker,
            integration_code=job.integration_code,
            zone_url=job.target.endpoint_url(),
        )
        request = render_request(spec, context, job.options.profile)
        job.last_request = request_json(request, [job.integration_code])
        job.last_response = None
        if create:
            self._mark_create_sent(job)
        response = job.target.send(request)
        job.last_request = dict(response.sent)
        job.last_response = {
            "status": response.status,
            "body": response.body[:RESPONSE_KEEP_CHARS],
        }
        return response

    def _create(self, job: _Job, step: Step, draft: TicketDraft) -> TicketRef:
        """Send the create; the ticket id is read where the Active request says."""
        response = self._send(job, step, draft, create=True)
        spec = job.options.request_for(AlertStatus.ACTIVE, RequestAction.CREATE)
        ticket_id = extract_ticket_id(
            response.body, spec.format, spec.id_path, job.options.profile.namespaces
        )
        if response.ticket is not None and response.ticket.ticket_id == ticket_id:
            return response.ticket
        # The ticket exists now: failing here would make the worker retry a committed create,
        # so a failed read-back only costs the ticket number.
        try:
            return job.target.get_ticket(ticket_id) or TicketRef(ticket_id)
        except TargetError as e:
            logger.warning(
                "autotask.ticket.read_back_failed", extra={"ticket_id": ticket_id, "error": str(e)}
            )
            return TicketRef(ticket_id)

    def _commit_step(self, job: _Job, step: Step | None, ref: TicketRef | None) -> None:
        """Record a finished step (or, for an empty plan, nothing) and, after the last, the end.

        Raises _LeaseLost (recording nothing but the calls) when another worker has taken the
        delivery over: that worker finds a created ticket by its marker.
        """
        now = self.clock()
        with self.services.transaction() as session:
            self._flush_calls(session, job.integration_id, job.delivery_id)
            delivery = self._owned(session, job.delivery_id)
            if delivery is not None:
                self._record_step(session, job, delivery, step, ref, now)
        if delivery is None:  # after the commit: the calls made are kept
            raise _LeaseLost()

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
            _apply(link, step, ref, now)
            job.ticket_id = link.ticket_id
            job.ticket_number = link.ticket_number
            job.progress += 1
            delivery.progress = job.progress
            delivery.last_request = {
                "step": step.kind.value,
                "ticket_id": link.ticket_id,
                **(job.last_request or {}),
            }
            delivery.last_response = job.last_response
        if job.progress >= len(job.steps):
            plan = delivery.plan or {}
            outcome = plan.get("outcome") or Outcome.IGNORED.value
            if link is not None and outcome != Outcome.IGNORED.value:
                link.applied_status = job.alert.status.value
                if plan.get("applies_severity"):
                    link.applied_severity = job.alert.severity.value
            delivery.state = "done"
            delivery.outcome = outcome
            delivery.finished_at = now
            delivery.lease_owner = None
            delivery.lease_expires_at = None
            delivery.last_error = plan.get("reason") or None

    def _ensure_plan(
        self,
        session: Session,
        delivery: Delivery,
        alert: IncomingAlert,
        settings: IntegrationSettings,
    ) -> bool:
        """Plan at the first attempt; a create gets a pending link (with its marker) first.

        Returns whether the pending link was made just now (then no create can have been sent yet,
        and the marker lookup is skipped).
        """
        if delivery.plan is not None:
            return False
        now = self.clock()
        link = latest_link(session, delivery.alert_id)
        decided = planner.plan(alert, snapshot(link), settings.policy(), now)
        episode = link.episode if link is not None else 1
        fresh = False
        creates = any(step.kind is StepKind.CREATE for step in decided.steps)
        if creates and (link is None or decided.new_episode):
            episode = link.episode + 1 if link is not None else 1
            session.add(
                TicketLink(
                    alert_id=delivery.alert_id,
                    episode=episode,
                    state=TicketState.PENDING_CREATE.value,
                    marker=new_marker(),
                    created_at=now,
                )
            )
            session.flush()
            fresh = True
        delivery.plan = plan_to_json(decided, episode)
        return fresh

    def _ignored(self, delivery_id: int, integration_id: int, reason: str) -> None:
        with self.services.transaction() as session:
            if integration_id:
                self._flush_calls(session, integration_id, delivery_id)
            delivery = self._owned(session, delivery_id)
            if delivery is None:
                return
            delivery.state = "done"
            delivery.outcome = Outcome.IGNORED.value
            delivery.last_error = f"no ticket: {reason}"
            delivery.finished_at = self.clock()
            delivery.lease_owner = None
            delivery.lease_expires_at = None

    def _postpone(self, delivery_id: int, integration_id: int, wait: float, why: str) -> None:
        """Try again in `wait` seconds; the attempt is not spent and it is never dead for it.

        For the governor holding a call back, or a create that may still be in flight.
        """
        now = self.clock()
        with self.services.transaction() as session:
            if integration_id:
                self._flush_calls(session, integration_id, delivery_id)
            delivery = self._owned(session, delivery_id)
            if delivery is None:
                return
            self._create_call_ended(session)  # held back before it went, if it was a create
            # The claim counted this pass as an attempt; it was none.
            delivery.attempts = max(delivery.attempts - 1, 0)
            delivery.state = "pending"
            delivery.next_attempt_at = now + timedelta(seconds=max(wait, 0.0))
            delivery.last_error = why
            delivery.lease_owner = None
            delivery.lease_expires_at = None
        logger.info(
            "delivery.postponed", extra={"delivery_id": delivery_id, "error": why, "wait": wait}
        )

    def _failed(
        self,
        delivery_id: int,
        integration_id: int,
        message: str,
        retryable: bool,
        response: dict[str, object] | None,
        retry_after: float | None,
        *,
        request: dict[str, Any] | None = None,
        max_attempts: int | None = None,
    ) -> None:
        now = self.clock()
        with self.services.transaction() as session:
            if integration_id:
                self._flush_calls(session, integration_id, delivery_id)
            delivery = self._owned(session, delivery_id)
            if delivery is None:
                logger.warning(
                    "delivery.failure_not_recorded",
                    extra={"delivery_id": delivery_id, "error": message, "reason": "lease lost"},
                )
                return
            self._create_call_ended(session)
            delivery.last_error = message
            delivery.last_response = dict(response) if response is not None else None
            if request is not None:
                delivery.last_request = request
            delivery.lease_owner = None
            delivery.lease_expires_at = None
            attempts_left = max_attempts is None or delivery.attempts < max_attempts
            if retryable and attempts_left and now < delivery.deadline_at:
                wait = self.retry.delay(delivery.attempts, retry_after, self.rng)
                delivery.state = "pending"
                delivery.next_attempt_at = now + timedelta(seconds=wait)
            else:
                delivery.state = "dead"
                delivery.outcome = FAILED
                delivery.finished_at = now
                logger.warning(
                    "delivery.dead_letter",
                    extra={"delivery_id": delivery_id, "error": message},
                )

    def _hit_faultpoint(self, name: str) -> None:
        point, probability = self._faultpoint
        if point == name and self.rng.random() < probability:
            os.kill(os.getpid(), signal.SIGKILL)


class _LeaseKeeper:
    """Renews a delivery's lease from a thread while the worker works on it.

    A call to Autotask may take longer than the lease (a slow zone lookup and create); without
    renewal another worker would take the delivery over and, its create still in flight, find no
    ticket by the marker and create a second one. The keeper renews every third of the lease;
    when a renewal finds the delivery taken over, `check()` stops the worker before its next
    call.
    """

    def __init__(self, worker: Worker, delivery_id: int) -> None:
        self.worker = worker
        self.delivery_id = delivery_id
        self.interval = max(worker.lease.total_seconds() / 3, 0.05)
        self.lost = False
        self._done = threading.Event()

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease in the background for as long as the block runs."""
        thread = threading.Thread(
            target=self._renew_until_done, name=f"lease-{self.delivery_id}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join()

    def check(self) -> None:
        """Raise _LeaseLost once a renewal found the delivery taken over."""
        if self.lost:
            raise _LeaseLost()

    def _renew_until_done(self) -> None:
        while not self._done.wait(self.interval):
            try:
                with self.worker.services.transaction() as session:
                    if not self.worker.renew_lease(session, self.delivery_id):
                        self.lost = True
                        return
            except Exception:  # a database hiccup: try again at the next interval
                logger.warning("delivery.lease_renewal_failed", exc_info=True)


def _parse_faultpoint(raw: str) -> tuple[str, float]:
    if not raw:
        return "", 0.0
    name, _, probability = raw.partition(":")
    return name, float(probability or 1.0)
