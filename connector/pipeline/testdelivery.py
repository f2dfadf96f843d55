"""Rendering an integration's delivery requests outside the worker: previews and test tickets.

`preview` renders what a status's requests would send for a stored alert (or the sample alert)
and sends nothing. `send_test` sends a clearly labelled test ticket through the integration's
Active create request, optionally completes it with the Cleared note and update requests, and
explains a failure in plain words (API token → /api/v1/test-delivery, CLI → `connector send-test`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    LifecyclePolicy,
    RequestAction,
    Severity,
    Step,
    StepKind,
    TicketRef,
    TicketSnapshot,
    TicketState,
    redact,
)
from connector.errors import (
    ConfigError,
    ConnectorError,
    ExtractionError,
    NotFoundError,
    RenderError,
    TargetError,
    TargetRateLimited,
    TargetRefusal,
    TargetUnavailable,
    TemplateRejected,
)
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.store import load_options
from connector.payloads.context import RenderContext
from connector.payloads.requests import DeliveryOptions, RequestSpec, request_json
from connector.payloads.samples import SAMPLE_ALERT, SAMPLE_CONTEXT
from connector.persistence.models import Alert, AlertEvent, Integration, TicketLink, utcnow
from connector.pipeline import planner
from connector.pipeline.dispatch import CallLog, Dispatcher, governed_target, render
from connector.pipeline.governor import Governor, Limits, Throttled
from connector.pipeline.ingest import alert_from_json, tenant_routes
from connector.pipeline.routing import build_draft, route_company
from connector.pipeline.ticketlinks import latest_link
from connector.ports import TargetProfile, TicketTarget
from connector.services import Services

#: What the zone URL token shows in a preview when the zone lookup failed.
ZONE_PLACEHOLDER = "##ZONEURL##"
#: The ticket id a preview shows when none is given or known.
SAMPLE_TICKET_ID = 128926
#: The correlation marker a preview shows when the alert has no ticket yet.
PREVIEW_MARKER = "preview-marker"

TEST_TITLE = "Test ticket from Autotask Alert Connector"
TEST_SOURCE = "connector"

#: The actions each status's requests carry, in the order the worker sends them.
STATUS_ACTIONS: Mapping[AlertStatus, tuple[RequestAction, ...]] = {
    AlertStatus.ACTIVE: (RequestAction.CREATE, RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.ACKNOWLEDGED: (RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.ESCALATED: (RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.CLEARED: (RequestAction.UPDATE, RequestAction.NOTE),
}


class BadRequest(ConnectorError):
    """A request the integration cannot serve as asked (no company, alert of another one)."""

    status = 400


@dataclass(frozen=True)
class _Loaded:
    """An integration as read in one short transaction, with its secrets decrypted."""

    integration: Integration
    settings: IntegrationSettings
    options: DeliveryOptions
    integration_code: str
    secret: str

    @property
    def secrets(self) -> tuple[str, str]:
        return self.integration_code, self.secret


def _load(services: Services, session: Session, integration_id: int | None) -> _Loaded:
    if integration_id is None:
        integration = session.scalar(select(Integration).order_by(Integration.id).limit(1))
        if integration is None:
            raise NotFoundError("no integration is configured")
    else:
        integration = session.get(Integration, integration_id)
        if integration is None:
            raise NotFoundError(f"no integration {integration_id}")
    box = services.secret_box()
    return _Loaded(
        integration=integration,
        settings=load_settings(integration.settings),
        options=load_options(session, integration, services.profile(integration.api_flavour)),
        integration_code=box.decrypt(integration.integration_code_encrypted),
        secret=box.decrypt(integration.secret_encrypted),
    )


def _store(services: Services, calls: CallLog, integration: Integration) -> None:
    """Store what is left of the calls as API activity (no delivery)."""
    if calls.records:
        with services.transaction() as session:
            calls.store_in(session, integration.id)


def _open_ticket_steps(
    alert: IncomingAlert, settings: IntegrationSettings, now: datetime
) -> dict[RequestAction, Step]:
    """The update and note steps the planner takes for `alert` on an open ticket."""
    policy = LifecyclePolicy(
        status_map=settings.status_map,
        complete_status=settings.status_map[AlertStatus.CLEARED],
        complete_on_clear=True,
        repeat_note_interval=timedelta(0),
        delivered=frozenset(AlertStatus),
    )
    opened = TicketSnapshot(TicketState.OPEN, ticket_id=1, applied_status=AlertStatus.ACTIVE)
    steps: dict[RequestAction, Step] = {
        RequestAction.UPDATE: Step(StepKind.SET_STATUS, status=settings.status_map[alert.status])
    }
    for step in planner.plan(alert, opened, policy, now).steps:
        if step.kind is StepKind.NOTE:
            steps[RequestAction.NOTE] = step
        else:
            steps[RequestAction.UPDATE] = step
    steps[RequestAction.CREATE] = Step(StepKind.CREATE, status=settings.status_map[alert.status])
    return steps


# -- preview -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewQuery:
    """What to preview: a status's requests, for a stored alert or the sample alert."""

    status: AlertStatus | None = None
    alert_id: int | None = None
    ticket_id: int | None = None


def _zone_url(target: TicketTarget, warnings: list[str], secrets: Sequence[str]) -> str:
    try:
        return target.endpoint_url()
    except (TargetError, ConfigError) as e:
        warnings.append(
            redact(f"the zone lookup failed, so the URLs show {ZONE_PLACEHOLDER}: {e}", secrets)
        )
        return ZONE_PLACEHOLDER


def preview(services: Services, integration_id: int, query: PreviewQuery) -> dict[str, Any]:
    """Render a status's requests as they would be sent, without sending any; secrets redacted.

    Raises NotFoundError (integration or alert), BadRequest, RenderError (the template fails on
    this alert: 422 with its reason and line).
    """
    warnings: list[str] = []
    now = utcnow()
    with services.transaction() as session:
        loaded = _load(services, session, integration_id)
        settings = loaded.settings
        link: TicketLink | None = None
        if query.alert_id is None:
            alert = SAMPLE_ALERT
            shown_alert: dict[str, Any] | str = "sample"
        else:
            alert, link = _stored_alert(session, integration_id, query.alert_id)
            shown_alert = {"id": query.alert_id, "fingerprint": alert.fingerprint}
        routes = tenant_routes(session, integration_id)
    status = query.status or alert.status
    alert = replace(alert, status=status)
    route = route_company(alert, settings, routes)
    company_id = route.company_id
    if company_id is None:
        company_id = 0
        warnings.append(
            f"this alert would get no ticket ({route.dropped}); the requests show company 0"
        )
    if not settings.deliver.get(status, True):
        warnings.append(f"deliveries for {status.value} alerts are switched off: none is sent")
    ticket_id = query.ticket_id or (link.ticket_id if link is not None else None)
    if ticket_id is None:
        ticket_id = SAMPLE_TICKET_ID
        warnings.append(f"no ticket id given: the requests show sample ticket {ticket_id}")
    ticket_number = (link.ticket_number if link is not None else None) or (
        SAMPLE_CONTEXT.ticket_number if query.alert_id is None else None
    )
    marker = link.marker if link is not None else PREVIEW_MARKER
    draft = build_draft(
        alert,
        company_id=company_id,
        status=settings.status_map[status],
        marker=marker,
        settings=settings,
        received_at=now,
        limits=loaded.options.profile.ticket_limits,
    )
    calls = CallLog()
    try:
        target = services.targets()(loaded.integration, settings, calls)
        zone_url = _zone_url(target, warnings, loaded.secrets)
    finally:
        _store(services, calls, loaded.integration)
    steps = _open_ticket_steps(alert, settings, now)
    rendered = []
    for action in STATUS_ACTIONS[status]:
        spec = loaded.options.request_for(status, action)
        ticket = None if action is RequestAction.CREATE else TicketRef(ticket_id, ticket_number)
        context = RenderContext.build(
            alert,
            settings=settings,
            draft=draft,
            step=steps[action],
            ticket=ticket,
            marker=marker,
            integration_code=loaded.integration_code,
            zone_url=zone_url,
        )
        request = render(spec, context, status, loaded.options.profile)
        rendered.append(request_json(request, loaded.secrets))
    return {
        "status": status.value,
        "alert": shown_alert,
        "requests": rendered,
        "warnings": warnings,
    }


def _stored_alert(
    session: Session, integration_id: int, alert_id: int
) -> tuple[IncomingAlert, TicketLink | None]:
    """The alert as its latest event describes it, and its latest ticket link."""
    row = session.get(Alert, alert_id)
    if row is None or row.integration_id != integration_id:
        raise NotFoundError(f"integration {integration_id} has no alert {alert_id}")
    event = session.scalar(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert_id)
        .order_by(AlertEvent.id.desc())
        .limit(1)
    )
    if event is None:
        raise NotFoundError(f"alert {alert_id} has no event")
    return alert_from_json(event.payload), latest_link(session, alert_id)


# -- test delivery -------------------------------------------------------------------------------


@dataclass
class TestDeliveryResult:
    """The answer of a test delivery: its JSON and the HTTP status it goes out with."""

    __test__ = False  # not a pytest class

    http_status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the test ticket was made (and completed, when asked)."""
        return bool(self.body.get("ok"))


class _Failed(Exception):
    """A test delivery step failed; carries the words, the HTTP status and what was exchanged."""

    def __init__(
        self,
        words: str,
        http_status: int,
        *,
        detail: str = "",
        request: Mapping[str, Any] | None = None,
        response: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(words)
        self.words = words
        self.http_status = http_status
        self.detail = detail
        self.request = request
        self.response = response
        #: More members of the answer (the ticket id when a later step failed).
        self.extra: dict[str, Any] = {}


def make_test_alert(now: datetime, integration_name: str) -> IncomingAlert:
    """The clearly labelled alert a test ticket is made from (a fresh fingerprint each time)."""
    return IncomingAlert(
        source=TEST_SOURCE,
        fingerprint=f"test-{uuid.uuid4()}",
        status=AlertStatus.ACTIVE,
        severity=Severity.INFO,
        title=TEST_TITLE,
        message=(
            "This is a test ticket sent by the Autotask Alert Connector to check its integration"
            f" {integration_name!r}. No alert fired; this ticket may be deleted."
        ),
        started_at=now,
        occurred_at=now,
    )


def explain(
    error: Exception, *, company_id: int, id_path: str, username: str, profile: TargetProfile
) -> str:
    """Plain words for why a test delivery failed (what was refused, as the target reads it)."""
    if isinstance(error, ExtractionError):
        return f"the ticket id was not found at {id_path} in Autotask's answer"
    if isinstance(error, RenderError | TemplateRejected):
        return f"the request template cannot be rendered: {error}"
    if isinstance(error, ConfigError):
        return f"the integration is not configured correctly: {error}"
    if not isinstance(error, TargetError):
        return f"Autotask refused the request: {error}"
    text = str(error)
    refusal = profile.refusal_of(error)
    if refusal is TargetRefusal.CREDENTIALS:
        return (
            "Autotask refused the API user's credentials (HTTP 401): check the username and secret"
        )
    if refusal is TargetRefusal.UNKNOWN_USER:
        return f"Autotask does not know the API user {username!r}: check the username"
    if refusal is TargetRefusal.TRACKING_IDENTIFIER:
        return "the API tracking identifier (integration code) is not valid"
    if refusal is TargetRefusal.UNKNOWN_COMPANY:
        return f"Autotask has no company {company_id}"
    if refusal is TargetRefusal.INACTIVE_COMPANY:
        return f"Autotask has no active company {company_id}"
    if refusal is TargetRefusal.ADDRESS_NOT_ALLOWED:
        return f"the integration's Autotask address is not allowed: {text}"
    if isinstance(error, TargetRateLimited):
        return f"Autotask asked the connector to slow down (rate limit): {text}"
    if isinstance(error, TargetUnavailable) and error.max_attempts is not None:
        # The target answered in its own error shape but gave no reason.
        return f"Autotask refused the request without saying why: {text}"
    if isinstance(error, TargetUnavailable):
        return f"Autotask could not be reached or gave no usable answer: {text}"
    return f"Autotask refused the request: {text}"


@dataclass
class _Run:
    """One test delivery in progress: what it needs and what it has exchanged so far."""

    loaded: _Loaded
    dispatch: Dispatcher
    alert: IncomingAlert
    company_id: int
    marker: str
    now: datetime
    #: Where the create's answer carries the ticket id.
    id_path: str
    zone_url: str = ""
    #: The action of the request being sent.
    action: RequestAction = RequestAction.CREATE

    def explain(self, error: Exception) -> str:
        return explain(
            error,
            company_id=self.company_id,
            id_path=self.id_path,
            username=self.loaded.integration.username,
            profile=self.loaded.options.profile,
        )

    @property
    def last_request(self) -> dict[str, Any] | None:
        """The last request, rendered or (once sent) as sent, with the action it carries."""
        shown = self.dispatch.last_request
        if shown is None or "action" in shown:
            return shown
        return {"action": self.action.value, **shown}

    def fail(self, error: Exception, words: str, http_status: int) -> _Failed:
        response = getattr(error, "response", None)
        if self.dispatch.last_response is not None:
            response = self.dispatch.last_response
        return _Failed(
            words,
            http_status,
            detail=str(error),
            request=self.last_request,
            response=response if isinstance(response, Mapping) else None,
        )

    def context(self, step: Step, ticket: TicketRef | None) -> RenderContext:
        """What the test ticket's requests are rendered with."""
        settings = self.loaded.settings
        draft = build_draft(
            self.alert,
            company_id=self.company_id,
            status=settings.status_map[self.alert.status],
            marker=self.marker,
            settings=settings,
            received_at=self.now,
            limits=self.loaded.options.profile.ticket_limits,
        )
        return RenderContext.build(
            self.alert,
            settings=settings,
            draft=draft,
            step=step,
            ticket=ticket,
            marker=self.marker,
            integration_code=self.loaded.integration_code,
            zone_url=self.zone_url,
        )


def send_test(
    services: Services,
    *,
    integration_id: int | None = None,
    company_id: int | None = None,
    complete: bool = False,
) -> TestDeliveryResult:
    """Send a test ticket through the integration's Active create request; maybe complete it.

    Every Autotask call is recorded as API activity. Raises NotFoundError when there is no such
    integration; every other failure is a result with `ok` false and plain words.
    """
    now = utcnow()
    with services.transaction() as session:
        loaded = _load(services, session, integration_id)
    integration = loaded.integration
    settings = loaded.settings
    company = company_id if company_id is not None else settings.default_company_id
    if company is None:
        return _result(
            loaded,
            _Failed(
                "no company to open the test ticket for: pass company_id or set the"
                f" integration's default_company_id (integration {integration.id})",
                400,
            ),
        )
    create_spec = loaded.options.request_for(AlertStatus.ACTIVE, RequestAction.CREATE)
    calls = CallLog()
    try:
        # Governed like the worker's calls: budget, slots, 429 pause and breaker.
        target = governed_target(
            services.targets(),
            integration,
            settings,
            calls,
            governor=Governor(services, Limits.from_settings(services.settings)),
            holder=f"test-delivery:{uuid.uuid4().hex[:12]}",
            profile=loaded.options.profile,
        )
        run = _Run(
            loaded=loaded,
            dispatch=Dispatcher(target, loaded.secrets, loaded.options.profile),
            alert=make_test_alert(now, integration.name),
            company_id=company,
            marker=f"test-{uuid.uuid4().hex[:20]}",
            now=now,
            id_path=create_spec.id_path,
        )
        body = _deliver(run, create_spec, complete)
    except _Failed as failed:
        return _result(loaded, failed)
    except ConfigError as e:
        return _result(loaded, _Failed(f"the integration is not configured correctly: {e}", 400))
    finally:
        _store(services, calls, integration)
    return TestDeliveryResult(200, dict(redact(body, loaded.secrets)))


def _deliver(run: _Run, create_spec: RequestSpec, complete: bool) -> dict[str, Any]:
    """Create the test ticket (and complete it, if asked); _Failed on the first failure."""
    try:
        run.zone_url = run.dispatch.target.endpoint_url()
    except TargetError as e:
        raise run.fail(e, f"the zone lookup failed: {run.explain(e)}", 502) from e
    steps = _open_ticket_steps(run.alert, run.loaded.settings, run.now)
    run.action = RequestAction.CREATE
    try:
        context = run.context(steps[RequestAction.CREATE], None)
        ticket = run.dispatch.create(create_spec, context, run.alert.status)
    except (RenderError, TemplateRejected, TargetError) as e:
        raise run.fail(e, run.explain(e), _failure_status(e, run.loaded.options.profile)) from e
    body: dict[str, Any] = {
        "ok": True,
        "integration_id": run.loaded.integration.id,
        "company_id": run.company_id,
        "marker": run.marker,
        "request": run.last_request,
        "response": run.dispatch.last_response,
        "ticket_id": ticket.ticket_id,
        "ticket_number": ticket.ticket_number,
    }
    if complete:
        body["completed"] = _complete(run, ticket)
    return body


def _complete(run: _Run, ticket: TicketRef) -> dict[str, Any]:
    """Send the Cleared note and update requests for the test ticket."""
    cleared = replace(
        run.alert,
        status=AlertStatus.CLEARED,
        message="The test is over; the connector completes its test ticket.",
    )
    steps = _open_ticket_steps(cleared, run.loaded.settings, run.now)
    done: dict[str, Any] = {}
    run.alert = cleared
    for action in (RequestAction.NOTE, RequestAction.UPDATE):
        spec = run.loaded.options.request_for(AlertStatus.CLEARED, action)
        run.action = action
        try:
            run.dispatch.send(spec, run.context(steps[action], ticket), cleared.status)
        except (RenderError, TemplateRejected, TargetError) as e:
            failed = run.fail(
                e,
                f"the test ticket {ticket.ticket_id} was created, but its cleared"
                f" {action.value} request failed: {run.explain(e)}",
                _failure_status(e, run.loaded.options.profile),
            )
            failed.extra["ticket_id"] = ticket.ticket_id
            raise failed from e
        done[action.value] = {"request": run.last_request, "response": run.dispatch.last_response}
    try:
        after = run.dispatch.target.get_ticket(ticket.ticket_id)
    except TargetError:
        after = None
    done["ticket_status"] = after.status if after is not None else None
    return done


def _failure_status(error: ConnectorError, profile: TargetProfile) -> int:
    """400 for a template or an address the connector refuses; 503 throttled; else 502."""
    if isinstance(error, Throttled):
        return 503
    if not isinstance(error, TargetError):
        return 400
    return 400 if profile.refusal_of(error) is TargetRefusal.ADDRESS_NOT_ALLOWED else 502


def _result(loaded: _Loaded, failed: _Failed) -> TestDeliveryResult:
    body = {
        "ok": False,
        "integration_id": loaded.integration.id,
        "error": failed.words,
        "detail": failed.detail,
        "request": failed.request,
        "response": failed.response,
        **failed.extra,
    }
    return TestDeliveryResult(failed.http_status, dict(redact(body, loaded.secrets)))
