"""/api/v1/rejected-webhooks: refused webhooks the admin can read, and their replay."""

from __future__ import annotations

import uuid

from flask import Response, jsonify
from sqlalchemy import select

from connector.errors import NotFoundError
from connector.integrations.editing import find_integration
from connector.persistence.models import (
    RejectedWebhook,
    utcnow,
)
from connector.pipeline.rejection_replay import (
    ReplayRefusedError as ReplayRefusedError,  # re-exported: where it was first
)
from connector.pipeline.rejection_replay import replay_rejection, replay_rejections
from connector.pipeline.rejections import discard_rejection, rejection_json
from connector.web.api import api_blueprint, equal_filters
from connector.web.api.bodies import DiscardSchema, ReplayAllSchema, json_body
from connector.web.hooks import services
from connector.web.params import (
    PAGE,
    database_id,
    known_source,
    page_of,
    parse_query,
    text,
    whole_number,
)

bp = api_blueprint("rejected_webhooks", __name__)

#: GET /rejected-webhooks: its filters and paging.
REJECTED_WEBHOOK_QUERY = {
    "source": known_source,
    "integration_id": database_id,
    "status": whole_number(100, 599),
    "request_id": text,
    **PAGE,
}


@bp.get("/rejected-webhooks")
def list_rejected_webhooks() -> Response:
    """Webhooks refused after their credentials were accepted, newest first (no body excerpt).

    Filters: `source`, `integration_id`, `status` (e.g. 400), `request_id` (from the sender's
    error answer).
    """
    args = parse_query(REJECTED_WEBHOOK_QUERY)
    limit, offset = page_of(args)
    query = equal_filters(
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
    now = utcnow()
    request_id = uuid.uuid4().hex
    with services().transaction() as session:
        answer = replay_rejection(services(), session, rejected_id, now=now, request_id=request_id)
    body = {"rejected_webhook_id": rejected_id, "replayed_at": now.isoformat()}
    return jsonify(body | answer | {"request_id": request_id}), 202


@bp.post("/rejected-webhooks/<int:rejected_id>/discard")
def discard_rejected_webhook(rejected_id: int) -> Response:
    """Give a kept webhook up: `{"reason"}` (required); it stays listed, never replayed."""
    data = json_body(DiscardSchema())
    with services().transaction() as session:
        body = rejection_json(discard_rejection(session, rejected_id, data["reason"], now=utcnow()))
    return jsonify(body)


@bp.post("/rejected-webhooks/replay-all")
def replay_all_rejected_webhooks() -> Response:
    """Replay every kept webhook neither replayed nor discarded, each as one replay does.

    Optional `{"integration_id"}`. `{"replayed", "replayed_ids", "refused": [{"id", "message"}]}`:
    a body that still cannot be read stays as it was.
    """
    data = json_body(ReplayAllSchema(), required=False)
    integration_id = data.get("integration_id")
    if integration_id is not None:
        with services().transaction() as session:
            find_integration(session, integration_id)
    result = replay_rejections(services(), now=utcnow(), integration_id=integration_id)
    return jsonify(result.to_json() | {"integration_id": integration_id})
