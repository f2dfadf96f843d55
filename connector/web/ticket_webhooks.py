"""POST /ticket-webhooks/<integration id>: the ticket system's callouts about its tickets.

The integration's registered ticket webhook (connector.integrations.ticket_webhooks) holds the
secret the callouts are signed with. A callout is verified over its raw body (401 when the
signature is missing or wrong, also when the integration has no webhook: a sender learns nothing
of which integrations have one), read by the ticket
system's adapter (400 when it cannot be), and applied to the ticket's links in one transaction:
a ticket a person completed or deleted there gets nothing more from the connector. The answer
is 200 with what was done, or 503 when the database cannot commit (the ticket system retries).
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from connector.domain import TicketChangeAction
from connector.errors import AuthError, ConfigError, NotFoundError
from connector.integrations.settings import load_settings
from connector.persistence.models import Integration, TicketWebhook, utcnow
from connector.pipeline.ticketlinks import apply_ticket_change
from connector.ports import TicketCallouts
from connector.services import Services

bp = Blueprint("ticket_webhooks", __name__)
logger = logging.getLogger(__name__)


def _services() -> Services:
    found: Services = current_app.extensions["connector"]
    return found


def _callouts(svc: Services) -> TicketCallouts:
    if svc.ticket_callouts is None:
        raise ConfigError("no ticket webhook reader is wired: build the app with create_app")
    return svc.ticket_callouts


def _bounded_body(limit: int) -> bytes:
    """The raw body, at most `limit` bytes; 413 past it (declared or not)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestEntityTooLarge(f"a ticket webhook callout is at most {limit} bytes")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge(f"a ticket webhook callout is at most {limit} bytes")
    return raw


@bp.post("/ticket-webhooks/<int:integration_id>")
def receive_callout(integration_id: int) -> tuple[Response, int]:
    """Verify a ticket webhook callout and apply it to the ticket's links; 200 with the result."""
    svc = _services()
    callouts = _callouts(svc)
    raw = _bounded_body(int(svc.settings["TICKET_WEBHOOK_MAX_BYTES"]))
    with svc.transaction() as session:
        webhook = session.scalar(
            select(TicketWebhook).where(TicketWebhook.integration_id == integration_id)
        )
        webhook_id = None if webhook is None else webhook.id
        # Without a webhook the callout is checked against a secret nobody has: refused as a
        # wrong signature is, so nothing tells which integrations have a webhook.
        secret = (
            secrets.token_urlsafe(32)
            if webhook is None
            else svc.secret_box().decrypt(webhook.secret_encrypted)
        )
    try:
        callouts.verify(raw, request.headers.get(callouts.signature_header), secret)
        if webhook_id is None:  # a signature made with a secret nobody has: never
            raise AuthError("the callout's signature does not match the body")
    except AuthError as e:
        # Never the presented signature: only that, and why, it was refused.
        logger.warning(
            "ticket_webhook.refused",
            extra={
                "integration_id": integration_id,
                "remote_addr": request.remote_addr,
                "reason": str(e),
            },
        )
        raise
    change = callouts.read(raw)
    now = utcnow()
    with svc.transaction() as session:
        stored = session.get(TicketWebhook, webhook_id)
        integration = session.get(Integration, integration_id)
        if stored is None or integration is None:
            raise NotFoundError(f"integration {integration_id} has no ticket webhook registered")
        stored.last_callout_at = now
        if change.action is TicketChangeAction.DEACTIVATED:
            stored.deactivated_at = now
            result = "recorded: the ticket system deactivated this webhook"
        else:
            complete = load_settings(integration.settings).policy().complete_status
            result = apply_ticket_change(session, integration_id, change, complete, now)
    logger.info(
        "ticket_webhook.applied",
        extra={
            "integration_id": integration_id,
            "ticket_id": change.ticket_id,
            "action": change.action.value,
            "status": change.status,
            "event_id": change.event_id,
            "result": result,
        },
    )
    return jsonify(
        {
            "ticket_id": change.ticket_id,
            "action": change.action.value,
            "status": change.status,
            "result": result,
        }
    ), 200
