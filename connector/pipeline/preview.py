"""Preview: what a status's delivery requests would send for a stored alert or the sample alert.

Nothing is sent to the ticket system except the zone lookup the URLs need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    RequestAction,
    TicketRef,
    redact,
)
from connector.errors import (
    ConfigError,
    NotFoundError,
    TargetError,
)
from connector.payloads.context import RenderContext
from connector.payloads.requests import (
    DeliveryOptions,
    RequestSpec,
    request_json,
    with_default_id_path,
)
from connector.payloads.samples import SAMPLE_ALERT, SAMPLE_CONTEXT
from connector.persistence.models import Alert, AlertEvent, TicketLink, utcnow
from connector.pipeline.dispatch import CallLog, render
from connector.pipeline.ingest import alert_from_json, tenant_routes
from connector.pipeline.routing import build_draft, route_company
from connector.pipeline.ticketlinks import latest_link
from connector.pipeline.trials import (
    STATUS_ACTIONS,
    load_integration,
    open_ticket_steps,
    store_calls,
)
from connector.ports import TicketTarget
from connector.services import Services

#: What the zone URL token shows in a preview when the zone lookup failed.
ZONE_PLACEHOLDER = "##ZONEURL##"
#: The ticket id a preview shows when none is given or known.
SAMPLE_TICKET_ID = 128926
#: The correlation marker a preview shows when the alert has no ticket yet.
PREVIEW_MARKER = "preview-marker"


@dataclass(frozen=True)
class PreviewQuery:
    """What to preview: a status's requests, for a stored alert or the sample alert."""

    status: AlertStatus | None = None
    alert_id: int | None = None
    ticket_id: int | None = None
    #: Unsaved requests (an editor's), rendered instead of the stored ones of their slots.
    requests: tuple[RequestSpec, ...] = ()


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
        loaded = load_integration(services, session, integration_id)
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
    elif status is AlertStatus.ACKNOWLEDGED and not settings.acknowledge_sets_status(
        loaded.options.profile
    ):
        warnings.append(
            "acknowledgements leave the ticket's status alone (status_on_acknowledge): the"
            " update request is sent only to reopen the ticket or set a new priority"
        )
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
        store_calls(services, calls, loaded.integration)
    steps = open_ticket_steps(alert, settings, now)
    options = _with_unsaved(loaded.options, query.requests)
    rendered = []
    for action in STATUS_ACTIONS[status]:
        spec = options.request_for(status, action)
        ticket = None if action is RequestAction.CREATE else TicketRef(ticket_id, ticket_number)
        context = RenderContext.build(
            alert,
            settings=settings,
            draft=draft,
            step=steps[action],
            ticket=ticket,
            marker=marker,
            zone_url=zone_url,
        )
        request = render(spec, context, status, options.profile)
        rendered.append(request_json(request, loaded.secrets))
    return {
        "status": status.value,
        "alert": shown_alert,
        "requests": rendered,
        "warnings": warnings,
    }


def _with_unsaved(options: DeliveryOptions, unsaved: Sequence[RequestSpec]) -> DeliveryOptions:
    """`options` with the unsaved requests in their slots."""
    if not unsaved:
        return options
    changed = {spec.slot: with_default_id_path(spec, options.profile) for spec in unsaved}
    return replace(options, requests={**options.requests, **changed})


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
