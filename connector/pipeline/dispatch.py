"""The one way a request reaches the ticket system: render → govern → send → extract → record.

The worker, the preview and the test delivery all go through here: a request spec is rendered for
one alert, sent through the governed target, the ticket id of a create is read where its request
says, and every call and exchange is kept for the record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    ApiCallRecord,
    OutboundRequest,
    RequestAction,
    TargetResponse,
    TicketRef,
)
from connector.errors import RenderError, TargetError, TemplateRejected
from connector.integrations.settings import IntegrationSettings
from connector.payloads.context import RenderContext
from connector.payloads.extraction import extract_ticket_id
from connector.payloads.requests import RequestSpec, render_request, request_json, slot_details
from connector.persistence.models import Integration
from connector.pipeline.activity import store_api_calls
from connector.pipeline.governor import ZONE_RECHECK_SECONDS, Governor
from connector.ports import TargetProfile, TicketTarget
from connector.services import TargetFactory

logger = logging.getLogger(__name__)

#: How much of Autotask's answer an exchange keeps (the full answer is in Autotask's own log).
RESPONSE_KEEP_CHARS = 4000


class CallLog:
    """Collects a target's calls until they are stored as API activity (of `delivery_id`)."""

    def __init__(self) -> None:
        self.records: list[ApiCallRecord] = []
        #: The delivery the calls are made for; None for previews and test deliveries.
        self.delivery_id: int | None = None

    def __call__(self, record: ApiCallRecord) -> None:
        self.records.append(record)

    def store_in(self, session: Session, integration_id: int) -> None:
        """Store the calls so far in `session`, and forget them."""
        if self.records:
            store_api_calls(session, self.records, integration_id, self.delivery_id)
            self.records.clear()


class GovernedTarget:
    """A TicketTarget whose every call is admitted by the governor, then accounted."""

    def __init__(
        self,
        inner: TicketTarget,
        governor: Governor,
        integration_id: int,
        holder: str,
        store: Callable[[Session], None] | None = None,
        *,
        profile: TargetProfile,
    ) -> None:
        self.inner = inner
        self.profile = profile
        self.governor = governor
        self.integration_id = integration_id
        self.holder = holder
        self.store = store
        self._zone_checked: float | None = None

    def _call(
        self, endpoint: str, *, creates: bool = False, cost: int = 1, slot: bool = True
    ) -> Any:
        return self.governor.call(
            self.integration_id,
            endpoint,
            self.holder,
            creates=creates,
            cost=cost,
            slot=slot,
            store=self.store,
        )

    def endpoint_url(self) -> str:
        """The zone URL. Its lookup is neither counted by Autotask nor thread-limited (§8), but
        it fails in an outage like any call: while it may need a lookup, pause and breaker apply.
        """
        now = time.monotonic()
        if self._zone_checked is not None and now - self._zone_checked < ZONE_RECHECK_SECONDS:
            return self.inner.endpoint_url()  # answered from the adapter's cache
        with self._call("ZoneInformation", slot=False):
            url = self.inner.endpoint_url()
        self._zone_checked = now
        return url

    def send(self, request: OutboundRequest) -> TargetResponse:
        # A SOAP update reads the ticket first (whole-entity update): two calls.
        cost = 2 if request.body_format == "xml" and request.action is RequestAction.UPDATE else 1
        creates = request.action is RequestAction.CREATE
        with self._call(self.profile.endpoint_of(request), creates=creates, cost=cost):
            return self.inner.send(request)

    def find_ticket_by_marker(self, marker: str) -> TicketRef | None:
        with self._call("Tickets"):
            return self.inner.find_ticket_by_marker(marker)

    def get_ticket(self, ticket_id: int) -> TicketRef | None:
        with self._call("Tickets"):
            return self.inner.get_ticket(ticket_id)


def governed_target(
    factory: TargetFactory,
    integration: Integration,
    settings: IntegrationSettings,
    calls: CallLog,
    *,
    governor: Governor,
    holder: str,
    profile: TargetProfile,
    read_timeout: float | None = None,
) -> GovernedTarget:
    """The integration's target, governed: each call is admitted, then stored at once.

    Storing each call's record as it ends (not with the step) keeps the hourly budget,
    which is counted from the stored records, right for every worker sharing the database.
    """
    integration_id = integration.id
    return GovernedTarget(
        factory(integration, settings, calls, read_timeout=read_timeout),
        governor,
        integration_id,
        holder,
        lambda session: calls.store_in(session, integration_id),
        profile=profile,
    )


def render(
    spec: RequestSpec, context: RenderContext, status: AlertStatus, profile: TargetProfile
) -> OutboundRequest:
    """Render one request; a failure becomes a RenderError naming the request, reason and line."""
    try:
        return render_request(spec, context, profile)
    except (RenderError, TemplateRejected) as e:
        where = f"{status.value} {spec.action.value} request"
        raise RenderError(
            f"{where}: {e}",
            line=e.line,
            details={**slot_details(spec, e.line), "status": status.value},
        ) from e


class Dispatcher:
    """Sends one alert's requests through a target, keeping the last exchange (secrets redacted).

    `last_request` is the rendered request until it is sent, then what the target says it sent;
    `last_response` is the start of the answer (None while there is none).
    """

    def __init__(
        self, target: TicketTarget, secrets: Sequence[str], profile: TargetProfile
    ) -> None:
        self.target = target
        self.profile = profile
        self.secrets = tuple(secrets)
        self.last_request: dict[str, Any] | None = None
        self.last_response: dict[str, Any] | None = None

    def send(
        self,
        spec: RequestSpec,
        context: RenderContext,
        status: AlertStatus,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> TargetResponse:
        """Render `spec` for an alert in `status` and send it; `before_send` runs in between."""
        request = render(spec, context, status, self.profile)
        self.last_request = request_json(request, self.secrets)
        self.last_response = None
        if before_send is not None:
            before_send()
        response = self.target.send(request)
        self.last_request = dict(response.sent)
        self.last_response = {
            "status": response.status,
            "body": response.body[:RESPONSE_KEEP_CHARS],
        }
        return response

    def create(
        self,
        spec: RequestSpec,
        context: RenderContext,
        status: AlertStatus,
        *,
        before_send: Callable[[], None] | None = None,
        read_back: bool = False,
    ) -> TicketRef:
        """Send a create; the ticket id is read where the create request says.

        The ticket number comes with the answer where the API gives the whole ticket (SOAP);
        otherwise (REST answers only `{"itemId"}`, autotask-api.md §4) it is read back with one
        more call only when `read_back` says a later request needs it.
        Raises ExtractionError when the answer has no ticket id there.
        """
        response = self.send(spec, context, status, before_send=before_send)
        ticket_id = extract_ticket_id(
            response.body, spec.format, spec.id_path, self.profile.namespaces
        )
        if response.ticket is not None and response.ticket.ticket_id == ticket_id:
            return response.ticket
        if not read_back:
            return TicketRef(ticket_id)
        # The ticket exists now: failing here would make the worker retry a committed create,
        # so a failed read-back only costs the ticket number.
        try:
            return self.target.get_ticket(ticket_id) or TicketRef(ticket_id)
        except TargetError as e:
            logger.warning(
                "autotask.ticket.read_back_failed", extra={"ticket_id": ticket_id, "error": str(e)}
            )
            return TicketRef(ticket_id)
