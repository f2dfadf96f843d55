"""A step of a delivery's plan carried to the ticket system: route, draft, render, send.

A create goes out at most once per ticket: before it is sent again, one whose outcome was lost is
looked up by its marker (once any call that may still be in flight has had time to end), and its
sending is committed (`before_create`) before it goes.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.domain import RequestAction, Step, StepKind, TicketRef
from connector.errors import ConfigError
from connector.payloads.context import RenderContext
from connector.pipeline.attempts import Job
from connector.pipeline.request_uses import needs_ticket_number
from connector.pipeline.routing import NoCompany, routed_draft
from connector.pipeline.ticketlinks import wait_out_a_create_in_flight

#: Which request carries each step: the event's status picks the request, the step its action.
STEP_ACTIONS = {
    StepKind.CREATE: RequestAction.CREATE,
    StepKind.NOTE: RequestAction.NOTE,
    StepKind.SET_STATUS: RequestAction.UPDATE,
    StepKind.SET_PRIORITY: RequestAction.UPDATE,
    StepKind.COMPLETE: RequestAction.UPDATE,
    StepKind.REOPEN: RequestAction.UPDATE,
}

#: Test-only crash point: CONNECTOR_FAULTPOINT=after_create:<probability> kills the process with
#: SIGKILL after Autotask answered a create and before the answer is committed.
FAULTPOINT_ENV = "CONNECTOR_FAULTPOINT"


@dataclass(frozen=True)
class Faultpoint:
    """Where (and how often) a test asked the process to die: `name:probability`."""

    name: str = ""
    probability: float = 0.0

    @classmethod
    def from_environment(cls) -> Faultpoint:
        """The faultpoint CONNECTOR_FAULTPOINT names, if any."""
        raw = os.environ.get(FAULTPOINT_ENV, "")
        if not raw:
            return cls()
        name, _, probability = raw.partition(":")
        return cls(name, float(probability or 1.0))

    def hit(self, name: str, rng: random.Random) -> None:
        """Die here (SIGKILL, no cleanup) if a test asked for it."""
        if name == self.name and rng.random() < self.probability:
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class StepSender:
    """Sends one step's request; `create_guard` is how long an unanswered create may still run."""

    create_guard: timedelta
    clock: Callable[[], datetime]
    rng: random.Random
    faultpoint: Faultpoint

    def perform(self, job: Job, step: Step, before_create: Callable[[], None]) -> TicketRef | None:
        """Send the step's delivery request; return the ticket a create made (or found).

        The event's status picks the request, the step its action; the request is rendered with
        the alert, the ticket drafted for it and the ticket it already has.
        """
        route, draft = routed_draft(
            job.alert,
            job.settings,
            job.routes,
            status=step.status,
            marker=job.marker,
            received_at=job.received_at,
            limits=job.options.profile.ticket_limits,
        )
        creates = step.kind is StepKind.CREATE
        if creates:
            if job.ticket_id is not None:
                return TicketRef(job.ticket_id)  # an earlier attempt created and recorded it
            if route.company_id is None:
                raise NoCompany(route.dropped or "no company")
            if not job.fresh_marker:
                wait_out_a_create_in_flight(
                    job.create_sent_at, self.create_guard, job.marker, self.clock()
                )
                found = job.target.find_ticket_by_marker(job.marker)
                if found is not None:
                    return found
        elif job.ticket_id is None:
            raise ConfigError(f"step {step.kind.value} needs a ticket, and the alert has none")
        spec = job.options.request_for(job.alert.status, STEP_ACTIONS[step.kind])
        context = RenderContext.build(
            job.alert,
            settings=job.settings,
            draft=draft,
            step=step,
            ticket=TicketRef(job.ticket_id, job.ticket_number)
            if job.ticket_id is not None
            else None,
            marker=job.marker,
            zone_url=job.target.endpoint_url(),
        )
        if not creates:
            job.dispatch.send(spec, context, job.alert.status)
            return None
        ref = job.dispatch.create(
            spec,
            context,
            job.alert.status,
            before_send=before_create,
            read_back=needs_ticket_number(job.options),
        )
        self.faultpoint.hit("after_create", self.rng)
        return ref
