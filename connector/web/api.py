"""The JSON API (/api/v1): alerts with events, tickets and deliveries; refused webhooks; replays."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from connector.domain import AlertStatus, ParsedWebhook
from connector.errors import (
    ConnectorError,
    NotFoundError,
    PayloadError,
    UnsupportedContentTypeError,
)
from connector.integrations.settings import IntegrationSettings
from connector.integrations.sources import configured_source
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    RejectedWebhook,
    TicketLink,
    utcnow,
)
from connector.pipeline.intake import Intake, check_content_type, read_webhook, take_in
from connector.pipeline.outbox import FAILED, DeliveryState
from connector.pipeline.rejections import prune, rejection_json
from connector.web.auth import bearer_token, check_api_token
from connector.web.hooks import integration_settings, services
from connector.web.params import (
    PAGE,
    database_id,
    known_source,
    one_of,
    page_of,
    parse_query,
    text,
    whole_number,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

ALERT_STATUSES = tuple(status.value for status in AlertStatus)
DELIVERY_STATES = tuple(state.value for state in DeliveryState)
#: A delivery's stored outcome: the planner's outcomes once done, "failed" once dead-lettered.
DELIVERY_OUTCOMES = ("created", "noted", "updated", "completed", "reopened", "ignored", FAILED)

#: GET /alerts: its filters and paging. The ticket filters match any ticket the alert has had
#: (given both, they must hold for one and the same ticket).
ALERT_QUERY = {
    "status": one_of(ALERT_STATUSES),
    "source": known_source,
    "fingerprint": text,
    "integration_id": database_id,
    "ticket_id": database_id,
    "ticket_number": text,
    **PAGE,
}
#: GET /deliveries: its filters and paging.
DELIVERY_QUERY = {
    "state": one_of(DELIVERY_STATES),
    "alert_id": database_id,
    "outcome": one_of(DELIVERY_OUTCOMES),
    **PAGE,
}

#: GET /rejected-webhooks: its filters and paging.
REJECTED_WEBHOOK_QUERY = {
    "source": known_source,
    "integration_id": database_id,
    "status": whole_number(100, 599),
    "request_id": text,
    **PAGE,
}


class ConflictError(ConnectorError):
    """The request does not fit the record's current state."""

    status = 409


class ReplayRefusedError(ConnectorError):
    """A kept webhook that still cannot be taken in; it stays, with the reason answered."""

    status = 422


@bp.before_request
def authenticate() -> None:
    """Every API call needs a live API token."""
    token = bearer_token(request)
    with services().transaction() as session:
        check_api_token(session, token)


def _equal(
    query: Select[Any], args: Mapping[str, Any], columns: Mapping[str, InstrumentedAttribute[Any]]
) -> Select[Any]:
    """`query` narrowed to the rows whose column equals each filter given in `args`."""
    for name, column in columns.items():
        if name in args:
            query = query.where(column == args[name])
    return query


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def _ticket(link: TicketLink | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {
        "episode": link.episode,
        "state": link.state,
        "ticket_id": link.ticket_id,
        "ticket_number": link.ticket_number,
        "ticket_status": link.ticket_status,
        "ticket_priority": link.ticket_priority,
        "applied_severity": link.applied_severity,
        "marker": link.marker,
        "completed_at": _iso(link.completed_at),
    }


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "event_id": delivery.event_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "outcome": delivery.outcome,
        "planned": delivery.plan.get("outcome") if delivery.plan else None,
        "last_error": delivery.last_error,
        "last_request": delivery.last_request,
        "last_response": delivery.last_response,
        "created_at": _iso(delivery.created_at),
        "finished_at": _iso(delivery.finished_at),
    }


def _alert(alert: Alert, link: TicketLink | None) -> dict[str, Any]:
    return {
        "id": alert.id,
        "integration_id": alert.integration_id,
        "fingerprint": alert.fingerprint,
        "source": alert.source,
        "status": alert.status,
        "severity": alert.severity,
        "title": alert.title,
        "host": alert.host,
        "tenant": alert.tenant,
        "monitor": alert.monitor,
        "started_at": _iso(alert.started_at),
        "last_event_at": _iso(alert.last_event_at),
        "ticket": _ticket(link),
    }


def _latest_links(session: Any, alert_ids: list[int]) -> dict[int, TicketLink]:
    if not alert_ids:
        return {}
    latest = (
        select(TicketLink.alert_id, func.max(TicketLink.episode).label("episode"))
        .where(TicketLink.alert_id.in_(alert_ids))
        .group_by(TicketLink.alert_id)
        .subquery()
    )
    rows = session.scalars(
        select(TicketLink).join(
            latest,
            (TicketLink.alert_id == latest.c.alert_id) & (TicketLink.episode == latest.c.episode),
        )
    )
    return {link.alert_id: link for link in rows}


@bp.get("/alerts")
def list_alerts() -> Response:
    """Alerts, newest activity first, each with its current ticket; filtered and paged."""
    args = parse_query(ALERT_QUERY)
    limit, offset = page_of(args)
    query = _equal(
        select(Alert).order_by(Alert.last_event_at.desc(), Alert.id.desc()),
        args,
        {
            "status": Alert.status,
            "source": Alert.source,
            "fingerprint": Alert.fingerprint,
            "integration_id": Alert.integration_id,
        },
    )
    ticket_filters = _equal(
        select(TicketLink.id).where(TicketLink.alert_id == Alert.id),
        args,
        {"ticket_id": TicketLink.ticket_id, "ticket_number": TicketLink.ticket_number},
    )
    if "ticket_id" in args or "ticket_number" in args:
        query = query.where(ticket_filters.exists())
    with services().transaction() as session:
        alerts = list(session.scalars(query.limit(limit).offset(offset)))
        links = _latest_links(session, [a.id for a in alerts])
        body = [_alert(alert, links.get(alert.id)) for alert in alerts]
    return jsonify({"alerts": body, "limit": limit, "offset": offset})


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int) -> Response:
    """One alert: state, ticket id and number, every event and every delivery."""
    with services().transaction() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFoundError(f"no alert {alert_id}")
        links = list(
            session.scalars(
                select(TicketLink)
                .where(TicketLink.alert_id == alert_id)
                .order_by(TicketLink.episode)
            )
        )
        events = session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
        deliveries = session.scalars(
            select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.id)
        )
        body = _alert(alert, links[-1] if links else None)
        body["message"] = alert.message
        body["properties"] = alert.properties
        body["tickets"] = [_ticket(link) for link in links]
        body["events"] = [
            {
                "id": event.id,
                "status": event.status,
                "severity": event.severity,
                "occurred_at": _iso(event.occurred_at),
                "received_at": _iso(event.received_at),
                "disposition": event.disposition,
                "warnings": event.warnings or [],
            }
            for event in events
        ]
        # What the admin should know now: the newest event's warnings.
        body["warnings"] = body["events"][-1]["warnings"] if body["events"] else []
        body["deliveries"] = [_delivery(d) for d in deliveries]
    return jsonify(body)


@bp.get("/deliveries")
def list_deliveries() -> Response:
    """Deliveries, newest first; `?state=dead` lists the dead letters."""
    args = parse_query(DELIVERY_QUERY)
    limit, offset = page_of(args)
    query = _equal(
        select(Delivery).order_by(Delivery.id.desc()),
        args,
        {"state": Delivery.state, "alert_id": Delivery.alert_id, "outcome": Delivery.outcome},
    )
    with services().transaction() as session:
        body = [_delivery(d) for d in session.scalars(query.limit(limit).offset(offset))]
    return jsonify({"deliveries": body, "limit": limit, "offset": offset})


@bp.post("/deliveries/<int:delivery_id>/replay")
def replay(delivery_id: int) -> Response:
    """Put a dead letter back in the queue, with a fresh deadline; it keeps its place in order."""
    now = utcnow()
    svc = services()
    with svc.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFoundError(f"no delivery {delivery_id}")
        if delivery.state != DeliveryState.DEAD:
            raise ConflictError(f"delivery {delivery_id} is {delivery.state}, not dead")
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = now
        delivery.deadline_at = now + svc.max_delivery_age
        delivery.finished_at = None
        body = _delivery(delivery)
    return jsonify(body)


@bp.get("/rejected-webhooks")
def list_rejected_webhooks() -> Response:
    """Webhooks refused after their credentials were accepted, newest first (no body excerpt).

    Filters: `source`, `integration_id`, `status` (e.g. 400), `request_id` (from the sender's
    error answer).
    """
    args = parse_query(REJECTED_WEBHOOK_QUERY)
    limit, offset = page_of(args)
    query = _equal(
        select(RejectedWebhook).order_by(RejectedWebhook.id.desc()),
        args,
        {
            "source": RejectedWebhook.source,
            "integration_id": RejectedWebhook.integration_id,
            "status": RejectedWebhook.status,
            "request_id": RejectedWebhook.request_id,
        },
    )
    with services().transaction() as session:
        body = [rejection_json(row) for row in session.scalars(query.limit(limit).offset(offset))]
    return jsonify({"rejected_webhooks": body, "limit": limit, "offset": offset})


@bp.get("/rejected-webhooks/<int:rejected_id>")
def get_rejected_webhook(rejected_id: int) -> Response:
    """One refused webhook (or refused alert of a batch) with its body (none for a 413)."""
    with services().transaction() as session:
        row = session.get(RejectedWebhook, rejected_id)
        if row is None:
            raise NotFoundError(f"no rejected webhook {rejected_id}")
        body = rejection_json(row, with_body=True)
    return jsonify(body)


@bp.post("/rejected-webhooks/<int:rejected_id>/replay")
def replay_rejected_webhook(rejected_id: int) -> tuple[Response, int]:
    """Take a kept body in again, as the hook would now: with today's adapter and settings.

    202 with the alerts' dispositions, recorded on the row, which cannot be replayed again (409):
    nothing is ingested twice. A body that still cannot be read is a 422 and the row stays.
    """
    svc = services()
    now = utcnow()
    request_id = uuid.uuid4().hex
    with svc.transaction() as session:
        row = session.get(RejectedWebhook, rejected_id)
        if row is None:
            raise NotFoundError(f"no rejected webhook {rejected_id}")
        if row.replayed_at is not None:
            raise ConflictError(
                f"rejected webhook {rejected_id} was replayed at {row.replayed_at.isoformat()}"
            )
        parsed, settings = _reread(session, row)
        # Claimed with a conditional UPDATE: of two replays at once, one takes the row in.
        claimed = session.execute(
            update(RejectedWebhook)
            .where(RejectedWebhook.id == rejected_id, RejectedWebhook.replayed_at.is_(None))
            .values(replayed_at=now)
            .execution_options(synchronize_session=False)
        )
        if not getattr(claimed, "rowcount", 0):
            raise ConflictError(f"rejected webhook {rejected_id} is being or was replayed")
        intake = Intake(
            integration_id=row.integration_id,
            source=row.source,
            settings=settings,
            now=now,
            max_delivery_age=svc.max_delivery_age,
            request_id=request_id,
        )
        answer = take_in(session, intake, parsed)
        session.execute(
            update(RejectedWebhook)
            .where(RejectedWebhook.id == rejected_id)
            .values(replay_result=answer | {"request_id": request_id})
            .execution_options(synchronize_session=False)
        )
        prune(session, row.integration_id, int(svc.settings["REJECTED_WEBHOOKS_KEPT"]))
    body = {"rejected_webhook_id": rejected_id, "replayed_at": now.isoformat()}
    return jsonify(body | answer | {"request_id": request_id}), 202


def _reread(session: Session, row: RejectedWebhook) -> tuple[ParsedWebhook, IntegrationSettings]:
    """The kept body read with the source's adapter and the integration's settings of today."""
    if row.body is None:
        why = (
            "a 413's body is never read" if row.status == 413 else "it was kept before bodies were"
        )
        raise ReplayRefusedError(f"rejected webhook {row.id} has no body to replay: {why}")
    svc = services()
    adapter = svc.sources.get(row.source)
    if adapter is None:
        raise ReplayRefusedError(f"no source named {row.source!r} any more")
    settings = integration_settings(session, row.integration_id)
    try:
        check_content_type(adapter, row.content_type)
        configured = configured_source(adapter, settings.source_options.get(row.source, {}))
        parsed = read_webhook(configured, row.body, row.content_type)
    except (PayloadError, UnsupportedContentTypeError) as e:
        raise ReplayRefusedError(f"still cannot be read: {e}", details=e.details) from e
    return parsed, settings
