"""Taking a webhook in: its body read by the source, its alerts ingested, its bad alerts kept.

The hook (POST /hooks/<source>) and the replay of a kept webhook (POST
/api/v1/rejected-webhooks/<id>/replay) share this path, so a replay ingests a body exactly as the
hook would have:

1. `check_content_type`: the source names the content types it reads (JSON unless it decodes
   bodies itself: `RawBodySource`); any other is a 415.
2. `read_webhook`: the body decoded (as JSON, or by the source) and judged alert by alert. A body
   that cannot be read as a whole, or none of whose alerts can, is a PayloadError (400).
3. `take_in`: in the caller's transaction, the readable alerts are ingested and every refused
   alert of the batch is kept as a rejected webhook of its own (status 202, `alert_index`); the
   answer names what happened to each alert by its index.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.orm import Session

from connector.domain import ParsedWebhook
from connector.errors import PayloadError, UnsupportedContentTypeError
from connector.integrations.settings import IntegrationSettings
from connector.pipeline.ingest import ingest
from connector.pipeline.rejections import Refusal, add_rejection, excerpt
from connector.pipeline.routing import TenantRoute
from connector.services import RawBodySource, SourceAdapter

#: What a source takes when it does not decode bodies itself.
JSON_ONLY = ("application/json",)
#: The disposition of an alert of an accepted webhook that could not be read.
REJECTED = "rejected"


@functools.cache
def _decodes_bodies(kind: type) -> bool:
    """Whether adapters of this class decode bodies themselves (RawBodySource), asked once per
    class: an isinstance check against a runtime-checkable protocol inspects it every time."""
    return callable(getattr(kind, "decode_body", None))


def _raw_body_source(adapter: SourceAdapter) -> RawBodySource | None:
    """`adapter` as a RawBodySource, or None when it takes JSON only."""
    return cast(RawBodySource, adapter) if _decodes_bodies(type(adapter)) else None


def content_types(adapter: SourceAdapter) -> tuple[str, ...]:
    """The media types `adapter` reads: its own list, or JSON only."""
    decoding = _raw_body_source(adapter)
    if decoding is not None:
        return tuple(decoding.content_types)
    return JSON_ONLY


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lower case, without its parameters ("" if none)."""
    return content_type.split(";", 1)[0].strip().lower()


def check_content_type(adapter: SourceAdapter, content_type: str) -> None:
    """Refuse (415) a content type the source does not read, naming those it does."""
    kind = media_type(content_type)
    taken = content_types(adapter)
    # application/*+json is JSON too (RFC 6839), as Flask's request.is_json has it.
    is_json = kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )
    if kind in taken or (is_json and "application/json" in taken):
        return
    names = ", ".join(taken[:-1]) + f" or {taken[-1]}" if len(taken) > 1 else taken[0]
    raise UnsupportedContentTypeError(f"send the webhook as Content-Type: {names}")


def decode_json(raw: bytes) -> Any:
    """A JSON body (UTF-8, -16 or -32, as RFC 8259 readers detect it); PayloadError if not."""
    try:
        return json.loads(raw)
    except RecursionError as e:  # e.g. "[[[[…" a million deep: the decoder gives up
        raise PayloadError(f"the body is nested too deeply to parse ({len(raw)} bytes)") from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError alike
        raise PayloadError(f"the body is not valid JSON ({len(raw)} bytes): {e}") from e


def read_webhook(adapter: SourceAdapter, raw: bytes, content_type: str) -> ParsedWebhook:
    """Decode `raw` and judge it alert by alert; PayloadError when no alert of it can be read.

    A body whose every item was refused is one 400 naming every bad field (as before batches
    were judged alert by alert); a body with no alert and no refusal (Datto RMM's test webhook)
    is read as such.
    """
    decoding = _raw_body_source(adapter)
    if decoding is not None:
        payload = decoding.decode_body(raw, content_type)
    else:
        payload = decode_json(raw)
    parsed = adapter.parse_items(payload)
    if parsed.refused and not parsed.alerts:
        raise parsed.refusal()
    return parsed


@dataclass(frozen=True)
class Intake:
    """Where and when a webhook is taken in."""

    integration_id: int
    source: str
    settings: IntegrationSettings
    now: datetime
    max_delivery_age: timedelta
    #: Answered with the webhook and kept on each of its refused alerts, to find them again.
    request_id: str


def take_in(
    session: Session,
    intake: Intake,
    parsed: ParsedWebhook,
    *,
    held: bool | None = None,
    routes: Mapping[str, TenantRoute] | None = None,
) -> dict[str, Any]:
    """Ingest the readable alerts and keep each refused one; the answer, alert by alert.

    Runs in the caller's transaction: the events, deliveries and refused alerts commit together.
    The refused alerts are added, not pruned (the caller prunes once the transaction's other
    writes are done). `held` and `routes`: as `ingest` takes them, when the caller read them.
    """
    accepted = ingest(
        session,
        intake.integration_id,
        intake.settings,
        [item.alert for item in parsed.alerts],
        now=intake.now,
        max_delivery_age=intake.max_delivery_age,
        held=held,
        routes=routes,
    )
    answer: dict[str, Any] = {
        "accepted": [
            {
                "index": item.index,
                "event_id": result.event_id,
                "alert_id": result.alert_id,
                "disposition": result.disposition,
                "warnings": list(result.warnings),
            }
            for item, result in zip(parsed.alerts, accepted, strict=True)
        ],
        "rejected": [],
    }
    for refused in parsed.refused:
        body = item_body(refused.webhook)
        row = add_rejection(
            session,
            Refusal(
                integration_id=intake.integration_id,
                source=intake.source,
                status=202,
                message=refused.message,
                details=dict(refused.details),
                request_id=intake.request_id,
                content_type="application/json",
                body_size=len(body),
                body_excerpt=excerpt(body),
                body=body,
                alert_index=refused.index,
            ),
            now=intake.now,
        )
        answer["rejected"].append(
            {
                "index": refused.index,
                "disposition": REJECTED,
                "message": refused.message,
                "details": dict(refused.details),
                "rejected_webhook_id": row.id,
            }
        )
    return answer


def item_body(webhook: Any) -> bytes:
    """A refused alert alone as a JSON body, exactly as it came (lone surrogates included)."""
    # surrogatepass: text the sender escaped as "\ud800" comes back as it was when decoded.
    text = json.dumps(webhook, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")
