"""/api/v1/alerts and /api/v1/deliveries: alerts with events, tickets and deliveries; replays."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from sqlalchemy import func, select

from connector.domain import AlertStatus
from connector.errors import (
    NotFoundError,
)
from connector.integrations.activation import SKIPPED
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    TicketLink,
    utcnow,
)
from connector.pipeline.outbox import FAILED, DeliveryState
from connector.web.api import ConflictError, api_blueprint, equal_filters, iso
from connector.web.hooks import services
from connector.web.params import (
    PAGE,
    database_id,
    known_source,
    one_of,
    page_of,
    parse_query,
    text,
)

bp = api_blueprint("alerts", __name__)

ALERT_STATUSES = tuple(status.value for status in AlertStatus)
DELIVERY_STATES = tuple(state.value for state in DeliveryState)
#: A delivery's stored outcome: the planner's outcomes once done, "failed" once dead-lettered,
#: "skipped" for one held while its integration was inactive and not sent when it was activated.
DELIVERY_OUTCOMES = (
    "created",
    "noted",
    "updated",
    "completed",
    "reopened",
    "ignored",
    FAILED,
    SKIPPED,
)

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
        "completed_at": iso(link.completed_at),
    }


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "event_id": delivery.event_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "outcome": delivery.outcome,
        "planned": delivery.plan.get("outcome") if delivery.plan else None,
        "last_error": delivery.last_error,
        "last_request": delivery.last_request,
        "last_response": delivery.last_response,
        "created_at": iso(delivery.created_at),
        "finished_at": iso(delivery.finished_at),
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
        "started_at": iso(alert.started_at),
        "last_event_at": iso(alert.last_event_at),
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
    query = equal_filters(
        select(Alert).order_by(Alert.last_event_at.desc(), Alert.id.desc()),
        args,
        {
            "status": Alert.status,
            "source": Alert.source,
            "fingerprint": Alert.fingerprint,
            "integration_id": Alert.integration_id,
        },
    )
    ticket_filters = equal_filters(
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
                "occurred_at": iso(event.occurred_at),
                "received_at": iso(event.received_at),
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
    query = equal_filters(
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
