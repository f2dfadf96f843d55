"""Refused webhooks the admin can see, and replay: nothing an authenticated sender sent is lost.

A webhook whose credentials were accepted but whose request was refused (bad JSON, invalid fields,
too large, wrong content type, too many alerts) is kept as one `rejected_webhook` row: the status,
message, details and request id of the error envelope, the content type, the body's size, the
start of its body for a quick look and the whole body as received (never a header value). One
alert of an accepted batch that could not be read is kept the same way, as its own row (status
202, `alert_index`), its body that alert alone. At most `keep` rows per integration are kept; the
oldest go first. Refusals of unknown senders (401, unknown source) are never stored: an anonymous
sender must not be able to fill the database; the web layer only logs them.

A kept row is dealt with once: replayed (pipeline/rejection_replay.py) or discarded with a
reason; either way it stays listed, with when and how.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connector.errors import ConflictError, NotFoundError
from connector.persistence.models import RejectedWebhook
from connector.pipeline.outbox import checked_reason

#: How much of a refused body is kept, in bytes.
EXCERPT_BYTES = 4096
#: The content type column's width.
CONTENT_TYPE_CHARS = 255
#: The largest body size a BIGINT holds (a 413's Content-Length is the sender's claim).
_MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Refusal:
    """One authenticated webhook refused with a 4xx, as answered to its sender."""

    integration_id: int
    source: str
    status: int
    message: str
    details: dict[str, Any] | None
    request_id: str
    content_type: str
    body_size: int | None
    body_excerpt: str | None
    #: The whole body as received; None when it was not read (413).
    body: bytes | None = None
    #: For one refused alert of an accepted batch: its index in the webhook's list.
    alert_index: int | None = None


def storable(text: str) -> str:
    """`text` as any database stores it: NUL and lone surrogates become U+FFFD.

    PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8; both only
    come from a sender's own bytes echoed in a message.
    """
    clean = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return clean.replace("\x00", "\ufffd")


def excerpt(body: bytes) -> str:
    """The first EXCERPT_BYTES of a body, decoded as UTF-8 with replacement characters."""
    return storable(body[:EXCERPT_BYTES].decode("utf-8", "replace"))


def body_size(size: int | None) -> int | None:
    """A size that fits the column (a sender can claim any Content-Length)."""
    return None if size is None else max(0, min(size, _MAX_SIZE))


def record_rejection(
    session: Session, refusal: Refusal, *, now: datetime, keep: int
) -> RejectedWebhook:
    """Store `refusal`, then delete the integration's oldest rows beyond `keep`."""
    row = add_rejection(session, refusal, now=now)
    prune(session, refusal.integration_id, keep)
    return row


def add_rejection(session: Session, refusal: Refusal, *, now: datetime) -> RejectedWebhook:
    """Store `refusal` (flushed, so its id is known); pruning is the caller's."""
    row = RejectedWebhook(
        integration_id=refusal.integration_id,
        source=refusal.source,
        status=refusal.status,
        message=storable(refusal.message),
        details=refusal.details,
        request_id=storable(refusal.request_id)[:32],
        content_type=storable(refusal.content_type)[:CONTENT_TYPE_CHARS],
        body_size=body_size(refusal.body_size),
        body_excerpt=refusal.body_excerpt,
        body=refusal.body,
        alert_index=refusal.alert_index,
        received_at=now,
    )
    session.add(row)
    session.flush()
    return row


def prune(session: Session, integration_id: int, keep: int) -> int:
    """Delete the integration's rows beyond the newest `keep` (ids grow with time); how many."""
    newest_to_drop = session.scalar(
        select(RejectedWebhook.id)
        .where(RejectedWebhook.integration_id == integration_id)
        .order_by(RejectedWebhook.id.desc())
        .offset(max(keep, 0))
        .limit(1)
    )
    if newest_to_drop is None:
        return 0
    result = session.execute(
        delete(RejectedWebhook).where(
            RejectedWebhook.integration_id == integration_id,
            RejectedWebhook.id <= newest_to_drop,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def rejection_json(row: RejectedWebhook, *, with_body: bool = False) -> dict[str, Any]:
    """A rejected webhook as the API shows it; the body (excerpt, text, base64) only when asked."""
    answer: dict[str, Any] = {
        "id": row.id,
        "integration_id": row.integration_id,
        "source": row.source,
        "status": row.status,
        "alert_index": row.alert_index,
        "message": row.message,
        "details": row.details,
        "request_id": row.request_id,
        "content_type": row.content_type,
        "body_size": row.body_size,
        "received_at": row.received_at.isoformat(),
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
        "replay_result": row.replay_result,
        "discarded_at": row.discarded_at.isoformat() if row.discarded_at else None,
        "discard_reason": row.discard_reason,
    }
    if with_body:
        answer["body_excerpt"] = row.body_excerpt
        # The text to read (invalid UTF-8 shown as U+FFFD), and the exact bytes in base64.
        answer["body"] = None if row.body is None else row.body.decode("utf-8", "replace")
        answer["body_base64"] = (
            None if row.body is None else base64.b64encode(row.body).decode("ascii")
        )
    return answer


def discard_rejection(
    session: Session, rejected_id: int, reason: object, *, now: datetime
) -> RejectedWebhook:
    """Give a kept webhook up with a reason (required): never replayed, still listed.

    A conditional UPDATE: of a discard and a replay at once, one wins and the other is told.
    """
    text = checked_reason(reason)
    changed = session.execute(
        update(RejectedWebhook)
        .where(
            RejectedWebhook.id == rejected_id,
            RejectedWebhook.replayed_at.is_(None),
            RejectedWebhook.discarded_at.is_(None),
        )
        .values(discarded_at=now, discard_reason=text)
        .execution_options(synchronize_session=False)
    )
    row = session.get(RejectedWebhook, rejected_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no rejected webhook {rejected_id}")
    if not getattr(changed, "rowcount", 0):
        raise ConflictError(f"rejected webhook {rejected_id} was {settled(row)}")
    return row


def settled(row: RejectedWebhook) -> str:
    """How a kept webhook was dealt with, in words ("replayed at …", "discarded at …")."""
    if row.replayed_at is not None:
        return f"replayed at {row.replayed_at.isoformat()}"
    if row.discarded_at is not None:
        return f"discarded at {row.discarded_at.isoformat()}"
    return "neither replayed nor discarded"
