"""/api/v1/rejected-webhooks: refused webhooks the admin can read, and their replay."""

from __future__ import annotations

import uuid

from flask import Response, jsonify
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.domain import ParsedWebhook
from connector.errors import (
    ConnectorError,
    NotFoundError,
    PayloadError,
    UnsupportedContentTypeError,
)
from connector.integrations.settings import IntegrationSettings
from connector.integrations.sources import configured_source
from connector.persistence.models import (
    RejectedWebhook,
    utcnow,
)
from connector.pipeline.intake import Intake, check_content_type, read_webhook, take_in
from connector.pipeline.rejections import prune, rejection_json
from connector.web.api import ConflictError, api_blueprint, equal_filters
from connector.web.hooks import integration_settings, services
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


class ReplayRefusedError(ConnectorError):
    """A kept webhook that still cannot be taken in; it stays, with the reason answered."""

    status = 422


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
