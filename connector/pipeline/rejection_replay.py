"""Replaying kept webhooks: a refused body taken in again, as the hook would take it in now.

One row at a time (`replay_rejection`, in the caller's transaction) or every row still waiting
(`replay_rejections`, each in its own transaction: one that still cannot be read stays as it
was and does not hold the others back). A row is replayed at most once and never once
discarded: nothing is ingested twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.domain import ParsedWebhook
from connector.errors import (
    ConfigError,
    ConflictError,
    ConnectorError,
    NotFoundError,
    PayloadError,
    UnsupportedContentTypeError,
)
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.sources import configured_source
from connector.persistence.models import Integration, RejectedWebhook
from connector.pipeline.intake import Intake, check_content_type, read_webhook, take_in
from connector.pipeline.rejections import prune, settled
from connector.services import Services


class ReplayRefusedError(ConnectorError):
    """A kept webhook that still cannot be taken in; it stays, with the reason answered."""

    status = 422


@dataclass
class ReplayAll:
    """What replaying every waiting webhook did: how many went in, which still cannot."""

    replayed: list[int] = field(default_factory=list)
    #: Rows that still cannot be read (or were dealt with meanwhile): id → the reason.
    refused: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The API's answer."""
        return {
            "replayed": len(self.replayed),
            "replayed_ids": self.replayed,
            "refused": [{"id": key, "message": why} for key, why in self.refused.items()],
        }


def replay_rejection(
    services: Services,
    session: Session,
    rejected_id: int,
    *,
    now: datetime,
    request_id: str,
) -> dict[str, Any]:
    """Take a kept body in again with today's adapter and settings; the webhook's answer.

    NotFoundError, ConflictError (replayed or discarded already, or by a replay racing this
    one), ReplayRefusedError (still unreadable; the row stays as it was).
    """
    row = session.get(RejectedWebhook, rejected_id)
    if row is None:
        raise NotFoundError(f"no rejected webhook {rejected_id}")
    if row.replayed_at is not None or row.discarded_at is not None:
        raise ConflictError(f"rejected webhook {rejected_id} was {settled(row)}")
    parsed, settings = _reread(services, session, row)
    # Claimed with a conditional UPDATE: of two replays (or a replay and a discard) at once,
    # one takes the row.
    claimed = session.execute(
        update(RejectedWebhook)
        .where(
            RejectedWebhook.id == rejected_id,
            RejectedWebhook.replayed_at.is_(None),
            RejectedWebhook.discarded_at.is_(None),
        )
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
        max_delivery_age=services.max_delivery_age,
        request_id=request_id,
    )
    answer = take_in(session, intake, parsed)
    session.execute(
        update(RejectedWebhook)
        .where(RejectedWebhook.id == rejected_id)
        .values(replay_result=answer | {"request_id": request_id})
        .execution_options(synchronize_session=False)
    )
    prune(session, row.integration_id, int(services.settings["REJECTED_WEBHOOKS_KEPT"]))
    return answer


def replay_rejections(
    services: Services, *, now: datetime, integration_id: int | None = None
) -> ReplayAll:
    """Replay every kept webhook neither replayed nor discarded (of one integration, if given),
    oldest first, each as one replay does and in its own transaction."""
    waiting = select(RejectedWebhook.id).where(
        RejectedWebhook.replayed_at.is_(None), RejectedWebhook.discarded_at.is_(None)
    )
    if integration_id is not None:
        waiting = waiting.where(RejectedWebhook.integration_id == integration_id)
    with services.transaction() as session:
        # Fixed first: a replay keeps the alerts still unreadable in it as new rows, which
        # wait for the admin rather than being replayed again at once.
        ids = list(session.scalars(waiting.order_by(RejectedWebhook.id)))
    result = ReplayAll()
    for rejected_id in ids:
        try:
            with services.transaction() as session:
                replay_rejection(
                    services, session, rejected_id, now=now, request_id=uuid.uuid4().hex
                )
        except NotFoundError:
            continue  # pruned by an earlier replay of this run: nothing left to replay
        except (ReplayRefusedError, ConflictError) as e:
            result.refused[rejected_id] = str(e)
        else:
            result.replayed.append(rejected_id)
    return result


def _settings(session: Session, integration_id: int) -> IntegrationSettings:
    """The integration's settings of today (checked when saved, so a failure here is a bug)."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise ConfigError(f"integration {integration_id} has vanished")
    try:
        return load_settings(integration.settings)
    except ValidationError as e:
        raise ConfigError(f"integration {integration.name} has invalid settings") from e


def _reread(
    services: Services, session: Session, row: RejectedWebhook
) -> tuple[ParsedWebhook, IntegrationSettings]:
    """The kept body read with the source's adapter and the integration's settings of today."""
    if row.body is None:
        why = (
            "a 413's body is never read" if row.status == 413 else "it was kept before bodies were"
        )
        raise ReplayRefusedError(f"rejected webhook {row.id} has no body to replay: {why}")
    adapter = services.sources.get(row.source)
    if adapter is None:
        raise ReplayRefusedError(f"no source named {row.source!r} any more")
    settings = _settings(session, row.integration_id)
    try:
        check_content_type(adapter, row.content_type)
        configured = configured_source(adapter, settings.source_options.get(row.source, {}))
        parsed = read_webhook(configured, row.body, row.content_type)
    except (PayloadError, UnsupportedContentTypeError) as e:
        raise ReplayRefusedError(f"still cannot be read: {e}", details=e.details) from e
    return parsed, settings
