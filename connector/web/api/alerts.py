"""/api/v1/alerts and /api/v1/deliveries: alerts with events, tickets and deliveries; replays."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from sqlalchemy import select

from connector.domain import AlertStatus
from connector.errors import (
    NotFoundError,
)
from connector.integrations.activation import SKIPPED
from connector.integrations.editing import find_integration
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    TicketLink,
    utcnow,
)
from connector.pipeline.alert_history import AlertFilter, alert_history
from connector.pipeline.alert_history import list_alerts as alert_list
from connector.pipeline.outbox import (
    FAILED,
    DeliveryState,
    discard_dead_letter,
    replay_dead_letter,
    replay_dead_letters,
)
from connector.web.api import api_blueprint, equal_filters, iso
from connector.web.api.bodies import DiscardSchema, ReplayAllSchema, json_body
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
    "search": text,
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
        # Set when a person closed the ticket in the ticket system (state
        # closed_remotely): "completed" or "deleted", when, and their person id.
        "closed_remotely": {
            "as": link.closed_remotely_as,
            "at": iso(link.closed_remotely_at),
            "by": link.closed_remotely_by,
        }
        if link.closed_remotely_as
        else None,
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
        "discarded_at": iso(delivery.discarded_at),
        "discard_reason": delivery.discard_reason,
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


def alert_filter(args: dict[str, Any]) -> AlertFilter:
    """The alerts list's filters from a parsed ALERT_QUERY."""
    return AlertFilter(
        status=args.get("status"),
        source=args.get("source"),
        fingerprint=args.get("fingerprint"),
        integration_id=args.get("integration_id"),
        ticket_id=args.get("ticket_id"),
        ticket_number=args.get("ticket_number"),
        search=args.get("search"),
    )


@bp.get("/alerts")
def list_alerts() -> Response:
    """Alerts, newest activity first, each with its current ticket; filtered and paged."""
    args = parse_query(ALERT_QUERY)
    limit, offset = page_of(args)
    with services().transaction() as session:
        listed = alert_list(session, alert_filter(args), limit=limit, offset=offset)
        body = [_alert(item.alert, item.ticket) for item in listed]
    return jsonify({"alerts": body, "limit": limit, "offset": offset})


def _event(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "status": event.status,
        "severity": event.severity,
        "occurred_at": iso(event.occurred_at),
        "received_at": iso(event.received_at),
        "disposition": event.disposition,
        "warnings": event.warnings or [],
    }


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int) -> Response:
    """One alert: state, ticket id and number, every event and every delivery."""
    with services().transaction() as session:
        history = alert_history(session, alert_id)
    if history is None:
        raise NotFoundError(f"no alert {alert_id}")
    body = _alert(history.alert, history.ticket)
    body["message"] = history.alert.message
    body["properties"] = history.alert.properties
    body["tickets"] = [_ticket(link) for link in history.tickets]
    body["events"] = [_event(event) for event in history.events]
    body["warnings"] = history.warnings
    body["deliveries"] = [_delivery(d) for d in history.deliveries]
    return jsonify(body)


@bp.get("/deliveries")
def list_deliveries() -> Response:
    """Deliveries, newest first; `?state=dead` lists the dead letters, `discarded` the given up."""
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
    svc = services()
    with svc.transaction() as session:
        delivery = replay_dead_letter(
            session, delivery_id, now=utcnow(), max_age=svc.max_delivery_age
        )
        body = _delivery(delivery)
    return jsonify(body)


@bp.post("/deliveries/replay-dead")
def replay_dead() -> Response:
    """Replay every dead letter (optional `{"integration_id"}`), each as one replay does.

    `{"replayed": <how many>, "integration_id"}`; discarded ones are left alone.
    """
    data = json_body(ReplayAllSchema(), required=False)
    integration_id = data.get("integration_id")
    svc = services()
    with svc.transaction() as session:
        if integration_id is not None:
            find_integration(session, integration_id)
        count = replay_dead_letters(
            session, now=utcnow(), max_age=svc.max_delivery_age, integration_id=integration_id
        )
    return jsonify({"replayed": count, "integration_id": integration_id})


@bp.post("/deliveries/<int:delivery_id>/discard")
def discard(delivery_id: int) -> Response:
    """Give a dead letter up: `{"reason"}` (required); state `discarded`, never replayed."""
    data = json_body(DiscardSchema())
    with services().transaction() as session:
        delivery = discard_dead_letter(session, delivery_id, data["reason"], now=utcnow())
        body = _delivery(delivery)
    return jsonify(body)
