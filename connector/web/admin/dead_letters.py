"""Dead letters and rejected webhooks: what could not be delivered or taken in, and why.

A dead letter is a delivery Autotask refused for good (or that ran out of time); a rejected
webhook is a sender's request refused after its credentials were accepted, kept with its body.
Each is replayed (after a fix) or discarded with a reason, one by one or all at once, through
the same functions as the JSON API (connector.pipeline.outbox, .rejections, .rejection_replay).
Discarded and replayed ones stay listed under the filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import Select, func, select
from werkzeug.wrappers import Response as BaseResponse

from connector.errors import ConflictError, InvalidInput
from connector.integrations.editing import find_integration
from connector.integrations.strict import flatten
from connector.persistence.models import (
    Alert,
    AlertEvent,
    Delivery,
    Integration,
    RejectedWebhook,
    utcnow,
)
from connector.pipeline.outbox import (
    DISCARD_REASON_CHARS,
    DeliveryState,
    discard_dead_letter,
    replay_dead_letter,
    replay_dead_letters,
)
from connector.pipeline.rejection_replay import (
    ReplayRefusedError,
    replay_rejection,
    replay_rejections,
)
from connector.pipeline.rejections import discard_rejection
from connector.web.admin import bp
from connector.web.hooks import services
from connector.web.params import MAX_ID

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])

#: The filter's choices: what each shows.
SHOW = {
    "waiting": "Waiting for a decision",
    "discarded": "Discarded",
    "replayed": "Replayed",
    "all": "All",
}
#: Rows shown per section, newest first.
LIMIT = 200

#: What a delivery's plan set out to do, in words (the planner's outcomes).
PLANNED = {
    "created": "create a ticket",
    "noted": "add a note to the ticket",
    "updated": "update the ticket",
    "completed": "complete the ticket",
    "reopened": "reopen the ticket",
    "ignored": "nothing (no ticket)",
}


@dataclass(frozen=True)
class Filters:
    """The page's filter: which items (SHOW) of which integration (None: every one)."""

    show: str = "waiting"
    integration_id: int | None = None

    def query(self) -> dict[str, Any]:
        """The filter as url_for's arguments (defaults left out)."""
        found: dict[str, Any] = {}
        if self.show != "waiting":
            found["show"] = self.show
        if self.integration_id is not None:
            found["integration_id"] = self.integration_id
        return found


def filters_of(values: Mapping[str, str]) -> Filters:
    """The filter from a query string or a form; anything unknown reads as the default."""
    show = values.get("show", "waiting")
    raw = (values.get("integration_id") or "").strip()
    integration_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else None
    if integration_id is not None and integration_id > MAX_ID:
        integration_id = None
    return Filters(show if show in SHOW else "waiting", integration_id)


@dataclass(frozen=True)
class DeadLetter:
    """One dead (or discarded) delivery as the page lists it."""

    id: int
    alert_id: int
    title: str
    source: str
    tenant: str | None
    integration: str
    event_status: str
    planned: str
    reason: str
    http_status: int | None
    attempts: int
    created_at: datetime
    dead_since: datetime | None
    discarded_at: datetime | None
    discard_reason: str | None


@dataclass(frozen=True)
class KeptWebhook:
    """One rejected webhook as the page lists it."""

    id: int
    integration: str
    source: str
    status: int
    alert_index: int | None
    message: str
    #: The error's details as "field: why" lines.
    details: list[str]
    content_type: str
    body_size: int | None
    body_excerpt: str | None
    received_at: datetime
    replayed_at: datetime | None
    accepted: int | None
    refused: int | None
    discarded_at: datetime | None
    discard_reason: str | None


def _delivery_states(show: str) -> tuple[str, ...]:
    """The delivery states the filter shows (a replayed dead letter is back in the queue)."""
    return {
        "waiting": (DeliveryState.DEAD.value,),
        "discarded": (DeliveryState.DISCARDED.value,),
        "replayed": (),
        "all": (DeliveryState.DEAD.value, DeliveryState.DISCARDED.value),
    }[show]


def _webhooks_shown(query: _Query, show: str) -> _Query:
    """`query` narrowed to the kept webhooks the filter shows."""
    replayed = RejectedWebhook.replayed_at.is_not(None)
    discarded = RejectedWebhook.discarded_at.is_not(None)
    if show == "waiting":
        return query.where(~replayed, ~discarded)
    if show == "discarded":
        return query.where(discarded)
    if show == "replayed":
        return query.where(replayed)
    return query


def _planned(delivery: Delivery, event_status: str) -> str:
    """What the delivery set out to do, in words."""
    outcome = (delivery.plan or {}).get("outcome")
    if outcome in PLANNED:
        return PLANNED[str(outcome)]
    return f"deliver the “{event_status}” event (not planned yet)"


def _http_status(delivery: Delivery) -> int | None:
    """The HTTP status of the last answer, unless the reason names it already."""
    status = (delivery.last_response or {}).get("status")
    if not isinstance(status, int) or f"HTTP {status}" in (delivery.last_error or ""):
        return None
    return status


def dead_letters_of(filters: Filters) -> tuple[list[DeadLetter], int]:
    """The dead letters the filter shows, newest first (at most LIMIT), and how many there are."""
    states = _delivery_states(filters.show)
    if not states:
        return [], 0
    query = (
        select(Delivery, Alert, AlertEvent.status, Integration.name)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(AlertEvent, AlertEvent.id == Delivery.event_id)
        .join(Integration, Integration.id == Delivery.integration_id)
        .where(Delivery.state.in_(states))
    )
    count = select(func.count()).select_from(Delivery).where(Delivery.state.in_(states))
    if filters.integration_id is not None:
        query = query.where(Delivery.integration_id == filters.integration_id)
        count = count.where(Delivery.integration_id == filters.integration_id)
    with services().transaction() as session:
        total = int(session.scalar(count) or 0)
        rows = [
            DeadLetter(
                id=delivery.id,
                alert_id=alert.id,
                title=alert.title,
                source=alert.source,
                tenant=alert.tenant,
                integration=integration,
                event_status=event_status,
                planned=_planned(delivery, event_status),
                reason=delivery.last_error or "no reason was recorded",
                http_status=_http_status(delivery),
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                dead_since=delivery.finished_at,
                discarded_at=delivery.discarded_at,
                discard_reason=delivery.discard_reason,
            )
            for delivery, alert, event_status, integration in session.execute(
                query.order_by(Delivery.id.desc()).limit(LIMIT)
            )
        ]
    return rows, total


def _replay_counts(result: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """How many alerts a replay took in and how many it still refused."""
    if not result:
        return None, None
    return len(result.get("accepted") or []), len(result.get("rejected") or [])


def kept_webhooks_of(filters: Filters) -> tuple[list[KeptWebhook], int]:
    """The rejected webhooks the filter shows, newest first (at most LIMIT), and how many."""
    query = _webhooks_shown(
        select(RejectedWebhook, Integration.name).join(
            Integration, Integration.id == RejectedWebhook.integration_id
        ),
        filters.show,
    )
    count = _webhooks_shown(select(func.count()).select_from(RejectedWebhook), filters.show)
    if filters.integration_id is not None:
        query = query.where(RejectedWebhook.integration_id == filters.integration_id)
        count = count.where(RejectedWebhook.integration_id == filters.integration_id)
    with services().transaction() as session:
        total = int(session.scalar(count) or 0)
        rows = []
        for row, integration in session.execute(
            query.order_by(RejectedWebhook.id.desc()).limit(LIMIT)
        ):
            accepted, refused = _replay_counts(row.replay_result)
            rows.append(
                KeptWebhook(
                    id=row.id,
                    integration=integration,
                    source=row.source,
                    status=row.status,
                    alert_index=row.alert_index,
                    message=row.message,
                    details=flatten(row.details) if row.details else [],
                    content_type=row.content_type,
                    body_size=row.body_size,
                    body_excerpt=row.body_excerpt,
                    received_at=row.received_at,
                    replayed_at=row.replayed_at,
                    accepted=accepted,
                    refused=refused,
                    discarded_at=row.discarded_at,
                    discard_reason=row.discard_reason,
                )
            )
    return rows, total


def _waiting_counts(integration_id: int | None) -> tuple[int, int]:
    """How many dead letters and rejected webhooks wait for a decision."""
    dead = select(func.count()).select_from(Delivery).where(Delivery.state == DeliveryState.DEAD)
    kept = _webhooks_shown(select(func.count()).select_from(RejectedWebhook), "waiting")
    if integration_id is not None:
        dead = dead.where(Delivery.integration_id == integration_id)
        kept = kept.where(RejectedWebhook.integration_id == integration_id)
    with services().transaction() as session:
        return int(session.scalar(dead) or 0), int(session.scalar(kept) or 0)


@bp.get("/dead-letters")
def dead_letters() -> str:
    """Dead letters and rejected webhooks with the reason, to replay or discard."""
    filters = filters_of(request.args)
    with services().transaction() as session:
        integrations = [
            (integration.id, integration.name)
            for integration in session.scalars(select(Integration).order_by(Integration.name))
        ]
    letters, letters_total = dead_letters_of(filters)
    webhooks, webhooks_total = kept_webhooks_of(filters)
    waiting_letters, waiting_webhooks = _waiting_counts(filters.integration_id)
    return render_template(
        "admin/dead_letters.html",
        filters=filters,
        show_choices=SHOW,
        integrations=integrations,
        letters=letters,
        letters_total=letters_total,
        webhooks=webhooks,
        webhooks_total=webhooks_total,
        waiting_letters=waiting_letters,
        waiting_webhooks=waiting_webhooks,
        reason_chars=DISCARD_REASON_CHARS,
        alert_url=lambda alert_id: url_for("admin.alert", alert_id=alert_id),
    )


def _back() -> BaseResponse:
    """Back to the page, with the filter the form was sent from."""
    return redirect(url_for("admin.dead_letters", **filters_of(request.form).query()))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- dead letters --------------------------------------------------------------------------------


@bp.post("/dead-letters/deliveries/<int:delivery_id>/replay")
def replay_delivery(delivery_id: int) -> BaseResponse:
    """Queue one dead letter again; the worker tries it at once."""
    svc = services()
    try:
        with svc.transaction() as session:
            replay_dead_letter(session, delivery_id, now=utcnow(), max_age=svc.max_delivery_age)
    except ConflictError as e:
        flash(f"Not replayed: {e}.")
        return _back()
    flash(f"Dead letter {delivery_id} is queued again; the worker tries it now.")
    return _back()


@bp.post("/dead-letters/deliveries/<int:delivery_id>/discard")
def discard_delivery(delivery_id: int) -> BaseResponse:
    """Give one dead letter up, with the reason the form gives."""
    try:
        with services().transaction() as session:
            discard_dead_letter(session, delivery_id, request.form.get("reason", ""), now=utcnow())
    except (InvalidInput, ConflictError) as e:
        flash(f"Not discarded: {e}.")
        return _back()
    flash(f"Dead letter {delivery_id} discarded; it is listed under “Discarded”.")
    return _back()


@bp.post("/dead-letters/deliveries/replay-all")
def replay_all_deliveries() -> BaseResponse:
    """Queue every dead letter (of the filter's integration) again."""
    filters = filters_of(request.form)
    svc = services()
    with svc.transaction() as session:
        if filters.integration_id is not None:
            find_integration(session, filters.integration_id)
        count = replay_dead_letters(
            session,
            now=utcnow(),
            max_age=svc.max_delivery_age,
            integration_id=filters.integration_id,
        )
    if count:
        flash(f"{_plural(count, 'dead letter')} queued again; the worker tries them now.")
    else:
        flash("No dead letter was waiting: nothing replayed.")
    return _back()


# -- rejected webhooks ---------------------------------------------------------------------------


@bp.post("/dead-letters/webhooks/<int:rejected_id>/replay")
def replay_webhook(rejected_id: int) -> BaseResponse:
    """Take one kept webhook in again, as the hook would now."""
    try:
        with services().transaction() as session:
            answer = replay_rejection(
                services(), session, rejected_id, now=utcnow(), request_id=uuid.uuid4().hex
            )
    except (ReplayRefusedError, ConflictError) as e:
        flash(f"Not replayed: {e}.")
        return _back()
    accepted, refused = _replay_counts(answer)
    flash(
        f"Webhook {rejected_id} replayed: {_plural(accepted or 0, 'alert')} taken in"
        + (f", {refused} still refused (listed as new rejected webhooks)" if refused else "")
        + "."
    )
    return _back()


@bp.post("/dead-letters/webhooks/<int:rejected_id>/discard")
def discard_webhook(rejected_id: int) -> BaseResponse:
    """Give one kept webhook up, with the reason the form gives."""
    try:
        with services().transaction() as session:
            discard_rejection(session, rejected_id, request.form.get("reason", ""), now=utcnow())
    except (InvalidInput, ConflictError) as e:
        flash(f"Not discarded: {e}.")
        return _back()
    flash(f"Rejected webhook {rejected_id} discarded; it is listed under “Discarded”.")
    return _back()


@bp.post("/dead-letters/webhooks/replay-all")
def replay_all_webhooks() -> BaseResponse:
    """Replay every kept webhook waiting (of the filter's integration), one by one."""
    filters = filters_of(request.form)
    if filters.integration_id is not None:
        with services().transaction() as session:
            find_integration(session, filters.integration_id)
    result = replay_rejections(services(), now=utcnow(), integration_id=filters.integration_id)
    if not result.replayed and not result.refused:
        flash("No rejected webhook was waiting: nothing replayed.")
        return _back()
    message = f"{_plural(len(result.replayed), 'webhook')} replayed"
    if result.refused:
        first_id, first_reason = next(iter(result.refused.items()))
        message += (
            f"; {_plural(len(result.refused), 'webhook')} still cannot be taken in"
            f" (#{first_id}: {first_reason})"
        )
    flash(message + ".")
    return _back()
