"""Test delivery: a clearly labelled test ticket sent through an integration, failures in words.

`send_test` sends it through the integration's Active create request, optionally completes it
with the Cleared note and update requests, and explains a failure in plain words (API token →
/api/v1/test-delivery, CLI → `connector send-test`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    RequestAction,
    Severity,
    Step,
    TicketRef,
    redact,
)
from connector.errors import (
    ConfigError,
    ConnectorError,
    ExtractionError,
    RenderError,
    TargetError,
    TargetRateLimited,
    TargetRefusal,
    TargetUnavailable,
    TemplateRejected,
    TooManyRequests,
)
from connector.payloads.context import RenderContext
from connector.payloads.requests import RequestSpec
from connector.persistence.models import TestDeliverySent, utcnow
from connector.pipeline.dispatch import CallLog, Dispatcher, governed_target
from connector.pipeline.governor import THROTTLED_PREFIX, Governor, Limits, Throttled
from connector.pipeline.routing import build_draft
from connector.pipeline.trials import (
    Loaded,
    load_integration,
    open_ticket_steps,
    store_calls,
)
from connector.ports import TargetProfile
from connector.services import Services

TEST_TITLE = "Test ticket from Autotask Alert Connector"
TEST_SOURCE = "connector"
#: The longest title and text a test ticket may be given (the ticket system's limits cut them
#: further, as an alert's).
TEST_TITLE_MAX = 255
TEST_TEXT_MAX = 8000
#: The window TEST_DELIVERIES_PER_MINUTE counts in.
RATE_WINDOW = timedelta(minutes=1)


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


def standard_text(integration_name: str) -> str:
    """The test ticket's description when the sender gives none."""
    return (
        "This is a test ticket sent by the Autotask Alert Connector to check its integration"
        f" {integration_name!r}. No alert fired; this ticket may be deleted."
    )


def make_test_alert(
    now: datetime, integration_name: str, *, title: str | None = None, text: str | None = None
) -> IncomingAlert:
    """The clearly labelled alert a test ticket is made from (a fresh fingerprint each time).

    `title` and `text` replace the standard title and description when given.
    """
    return IncomingAlert(
        source=TEST_SOURCE,
        fingerprint=f"test-{uuid.uuid4()}",
        status=AlertStatus.ACTIVE,
        severity=Severity.INFO,
        title=title or TEST_TITLE,
        message=text or standard_text(integration_name),
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
    if isinstance(error, Throttled):
        # Held back by the connector itself (paused, over budget, breaker open): nothing was sent.
        return (
            "the connector holds this integration's calls to Autotask back now, nothing was"
            f" sent: {text.removeprefix(THROTTLED_PREFIX)}"
        )
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

    loaded: Loaded
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
            zone_url=self.zone_url,
        )


def admit_test_delivery(services: Services, sender: str, now: datetime | None = None) -> None:
    """Count a test delivery `sender` is about to send; TooManyRequests once it sent
    TEST_DELIVERIES_PER_MINUTE in the last minute (each one costs Autotask calls and a ticket).

    Concurrent requests of one sender in several web processes may each pass at the limit's
    edge; the admin page sends one at a time per admin anyway.
    """
    limit = int(services.settings["TEST_DELIVERIES_PER_MINUTE"])
    now = now or utcnow()
    since = now - RATE_WINDOW
    with services.transaction() as session:
        session.execute(delete(TestDeliverySent).where(TestDeliverySent.at <= since))
        sent = session.scalars(
            select(TestDeliverySent.at)
            .where(TestDeliverySent.sender == sender[:100], TestDeliverySent.at > since)
            .order_by(TestDeliverySent.at)
        ).all()
        if len(sent) >= limit:
            # Free again once the oldest of the last `limit` leaves the window.
            wait = max(1, math.ceil((sent[-limit] + RATE_WINDOW - now).total_seconds()))
            raise TooManyRequests(
                f"at most {limit} test deliveries a minute (TEST_DELIVERIES_PER_MINUTE):"
                f" send the next in {wait} s",
                retry_after=wait,
            )
        session.add(TestDeliverySent(sender=sender[:100], at=now))


def send_test(
    services: Services,
    *,
    integration_id: int | None = None,
    company_id: int | None = None,
    complete: bool = False,
    title: str | None = None,
    text: str | None = None,
) -> TestDeliveryResult:
    """Send a test ticket through the integration's Active create request; maybe complete it.

    `title` and `text` replace the standard title and description (the API and the admin page
    check them with TestDeliverySchema). Every Autotask call is recorded as API activity.
    Raises NotFoundError when there is no such integration; every other failure is a result
    with `ok` false and plain words.
    """
    now = utcnow()
    with services.transaction() as session:
        loaded = load_integration(services, session, integration_id)
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
            # Someone waits on the page or the API for the answer: not the worker's 30 s.
            read_timeout=float(services.settings["TEST_DELIVERY_TIMEOUT_SECONDS"]),
        )
        run = _Run(
            loaded=loaded,
            dispatch=Dispatcher(target, loaded.secrets, loaded.options.profile),
            alert=make_test_alert(now, integration.name, title=title, text=text),
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
        store_calls(services, calls, integration)
    return TestDeliveryResult(200, dict(redact(body, loaded.secrets)))


def _deliver(run: _Run, create_spec: RequestSpec, complete: bool) -> dict[str, Any]:
    """Create the test ticket (and complete it, if asked); _Failed on the first failure."""
    try:
        run.zone_url = run.dispatch.target.endpoint_url()
    except Throttled as e:
        raise run.fail(e, run.explain(e), 503) from e
    except TargetError as e:
        raise run.fail(e, f"the zone lookup failed: {run.explain(e)}", 502) from e
    steps = open_ticket_steps(run.alert, run.loaded.settings, run.now)
    run.action = RequestAction.CREATE
    try:
        context = run.context(steps[RequestAction.CREATE], None)
        ticket = run.dispatch.create(create_spec, context, run.alert.status)
    except (RenderError, TemplateRejected, TargetError) as e:
        raise run.fail(e, run.explain(e), _failure_status(e, run.loaded.options.profile)) from e
    if ticket.ticket_number is None:
        ticket = _read_back(run, ticket)
    body: dict[str, Any] = {
        "ok": True,
        "integration_id": run.loaded.integration.id,
        "company_id": run.company_id,
        "marker": run.marker,
        "request": run.last_request,
        "response": run.dispatch.last_response,
        "ticket_id": ticket.ticket_id,
        "ticket_number": ticket.ticket_number,
        "title": run.alert.title,
    }
    if complete:
        body["completed"] = _complete(run, ticket)
    return body


def _read_back(run: _Run, ticket: TicketRef) -> TicketRef:
    """The ticket as the target reads it back (for its number); as it was if that fails."""
    try:
        found = run.dispatch.target.get_ticket(ticket.ticket_id)
    except TargetError:
        return ticket
    return found if found is not None else ticket


def _complete(run: _Run, ticket: TicketRef) -> dict[str, Any]:
    """Send the Cleared note and update requests for the test ticket."""
    cleared = replace(
        run.alert,
        status=AlertStatus.CLEARED,
        message="The test is over; the connector completes its test ticket.",
    )
    steps = open_ticket_steps(cleared, run.loaded.settings, run.now)
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
    # Completed: Autotask now reports the ticket in the status a cleared alert's ticket gets.
    complete_status = run.loaded.settings.status_map[AlertStatus.CLEARED]
    done["done"] = after is not None and after.status == complete_status
    return done


def _failure_status(error: ConnectorError, profile: TargetProfile) -> int:
    """400 for a template or an address the connector refuses; 503 throttled; else 502."""
    if isinstance(error, Throttled):
        return 503
    if not isinstance(error, TargetError):
        return 400
    return 400 if profile.refusal_of(error) is TargetRefusal.ADDRESS_NOT_ALLOWED else 502


def _result(loaded: Loaded, failed: _Failed) -> TestDeliveryResult:
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
