"""POST /hooks/<source>: verify, read alert by alert, commit, answer 202. Never waits on Autotask.

The body is read by the source (`pipeline/intake.py`); each alert of it is ingested or, when it
cannot be read, kept as a rejected webhook of its own, and the 202 says which. A refusal of the
whole webhook (4xx) is kept whole for the admin once its credentials were accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from connector.domain import ParsedWebhook
from connector.errors import AuthError, PayloadError, UnknownSourceError
from connector.integrations.settings import IntegrationSettings
from connector.integrations.sources import configured_source
from connector.integrations.verification import DuplicateMessage, HookCaller, remember_signature
from connector.logs import request_id
from connector.persistence.models import utcnow
from connector.pipeline.intake import Intake, check_content_type, read_webhook, take_in
from connector.pipeline.rejections import Refusal, excerpt, prune, record_rejection
from connector.secrets import token_hash
from connector.services import Services, SourceAdapter
from connector.web.auth import hook_caller, signed

bp = Blueprint("hooks", __name__)
logger = logging.getLogger(__name__)


def services() -> Services:
    """The app's Services."""
    found: Services = current_app.extensions["connector"]
    return found


#: Sent with every 401 from a hook; HMAC is no HTTP auth scheme, so only its headers are named.
CHALLENGE = 'Bearer realm="webhooks", Basic realm="webhooks", charset="UTF-8"'


@bp.after_request
def challenge(response: Response) -> Response:
    """Tell a refused sender which schemes are accepted (RFC 9110 WWW-Authenticate)."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


@bp.after_request
def keep_refusal(response: Response) -> Response:
    """Make every refusal (4xx) visible without ever changing the answer.

    Once the credentials were accepted (the integration is known), a refusal is stored for the
    admin (GET /api/v1/rejected-webhooks) in its own transaction; a 401 or an unknown source is
    only logged, without the presented credentials, so that anonymous senders write nothing.
    A failure here is logged and the sender still gets its 4xx.
    """
    status = response.status_code
    if not 400 <= status < 500:
        return response
    error: dict[str, Any] = {"message": response.status, "details": None, "request_id": ""}
    source = ""
    integration_id = g.get("hook_integration_id")
    try:
        error = _answered_error(response)
        source = str((request.view_args or {}).get("source", ""))
        if integration_id is None or status == 401:
            _log_unauthenticated(source, status, error)
        else:
            _record(int(integration_id), source, status, error)
    except Exception:
        # The request id is on every line of a request (connector/logs.py).
        logger.exception(
            "hook.refusal_not_recorded",
            extra={
                "integration_id": integration_id,
                "source": source,
                "status": status,
                "reason": error["message"],
            },
        )
    return response


def _log_unauthenticated(source: str, status: int, error: dict[str, Any]) -> None:
    """Log a refusal of an unknown sender: never a header value, so never a presented secret."""
    logger.warning(
        "hook.refused_unauthenticated",
        extra={
            "source": source,
            "status": status,
            "remote_addr": request.remote_addr,
            "reason": error["message"],
        },
    )


def _record(integration_id: int, source: str, status: int, error: dict[str, Any]) -> None:
    """Store an authenticated refusal, whole body included, in its own transaction."""
    size, body = _body_facts(status)
    refusal = Refusal(
        integration_id=integration_id,
        source=source,
        status=status,
        message=error["message"],
        details=error["details"],
        request_id=error["request_id"],
        content_type=request.headers.get("Content-Type", ""),
        body_size=size,
        body_excerpt=None if body is None else excerpt(body),
        body=body,
    )
    svc = services()
    with svc.transaction() as session:
        record_rejection(
            session, refusal, now=utcnow(), keep=int(svc.settings["REJECTED_WEBHOOKS_KEPT"])
        )


def _answered_error(response: Response) -> dict[str, Any]:
    """The message, details and request id of the error envelope in `response`."""
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    details = error.get("details")
    return {
        "message": str(error.get("message") or response.status),
        "details": details if isinstance(details, dict) else None,
        "request_id": str(error.get("request_id") or ""),
    }


def _body_facts(status: int) -> tuple[int | None, bytes | None]:
    """The refused body's size and bytes; a 413's body is never read: its declared size only."""
    if status == 413:
        return request.content_length, None
    try:
        raw = request.get_data(cache=True)
    except HTTPException:  # a 415 whose body is also too large, or was cut off: not kept
        return request.content_length, None
    return len(raw), raw


def _raw_body() -> bytes:
    """The body as sent, read once (cached); 413 past MAX_CONTENT_LENGTH, before any parsing."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # Werkzeug cuts a chunked body (no Content-Length) at the limit instead of refusing it;
        # the cut cannot be told from a body of exactly the limit, so that is refused too.
        raise RequestEntityTooLarge()
    return raw


def _already_accepted() -> tuple[Response, int]:
    """200 for a Standard Webhooks retry of a message accepted before: stored once already."""
    note = "this webhook-id was accepted before; nothing was stored again"
    return jsonify({"accepted": [], "duplicate": True, "message": note}), 200


def _caller(svc: Services, source: str, now: datetime, signed_body: bytes) -> HookCaller:
    """Who sent the webhook: a plain credential from this process's memory when it was seen
    before (the webhook's transaction then checks it is still live), else from the database."""
    if signed(request):
        # An HMAC signature differs on every request (and may be a replay): always checked.
        with svc.transaction() as session:
            return hook_caller(session, request, source, now=now, body=signed_body, box=svc.box)
    key = _credential_key(source)
    caller = svc.hook_cache.caller(key)
    if caller is None:
        with svc.transaction() as session:
            caller = hook_caller(session, request, source, now=now)
        svc.hook_cache.remember(key, caller)
    return caller


def _refuse_unknown_source(
    svc: Services, source: str, now: datetime, signed_body: bytes
) -> NoReturn:
    """Refuse a webhook to a source nobody serves: 401 to a sender whose credentials are not
    accepted (as for a bad token: no list of sources before authentication), 404 naming the
    sources to one whose are (a typo in a URL it was given)."""
    with svc.transaction() as session:
        caller = hook_caller(session, request, source, now=now, body=signed_body, box=svc.box)
    g.hook_integration_id = caller.integration_id
    raise UnknownSourceError(f"no source named {source!r}; known: {', '.join(sorted(svc.sources))}")


def _credential_key(source: str) -> tuple[str, str]:
    """The cache key of a plain credential: the source and a digest of what was presented."""
    return source, token_hash(request.headers.get("Authorization", ""))


def _read(
    adapter: SourceAdapter,
    settings: IntegrationSettings,
    source: str,
    raw: bytes,
    content_type: str,
) -> ParsedWebhook:
    """The body read by the source as the integration's settings configure it."""
    configured = configured_source(adapter, settings.source_options.get(source, {}))
    return read_webhook(configured, raw, content_type)


@bp.post("/hooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Accept a webhook alert by alert; 202 with what became of each, once committed.

    One transaction does it all (a signed request, or a credential this process has not seen,
    adds a short one to check it): the credential still live, the integration's state, the
    alerts, their events and deliveries. The body is read before it begins, so a slow sender
    holds no lock.
    """
    svc = services()
    adapter = svc.sources.get(source)
    now = utcnow()
    # An HMAC signs the raw body, so a signed request's body is read (not parsed) first.
    signed_body = _raw_body() if signed(request) else b""
    if adapter is None:
        _refuse_unknown_source(svc, source, now, signed_body)
    caller = _caller(svc, source, now, signed_body)
    # From here on a refusal is the integration's: keep_refusal stores it for the admin.
    g.hook_integration_id = caller.integration_id
    if caller.duplicate:
        return _already_accepted()
    content_type = request.headers.get("Content-Type", "")
    check_content_type(adapter, content_type)  # before the body is read: 415, not 413
    raw = _raw_body()
    # Read with the settings this process kept (no lock held while parsing); should the
    # transaction find them changed, the body is read again with the new ones.
    kept = svc.hook_cache.config(caller.integration_id)
    early: ParsedWebhook | PayloadError | None = None
    if kept is not None:
        try:
            early = _read(adapter, kept.settings, source, raw, content_type)
        except PayloadError as e:
            early = e
    try:
        with svc.transaction() as session:
            try:
                state = svc.hook_cache.state(session, caller)
            except AuthError:
                svc.hook_cache.forget(_credential_key(source))
                raise
            settings = state.config.settings
            if state.config is not kept or early is None:
                parsed = _read(adapter, settings, source, raw, content_type)
            elif isinstance(early, PayloadError):
                raise early
            else:
                parsed = early
            intake = Intake(
                integration_id=caller.integration_id,
                source=source,
                settings=settings,
                now=utcnow(),
                max_delivery_age=svc.max_delivery_age,
                request_id=request_id(),
            )
            # With the events: a failed commit (503) lets the sender retry it.
            remember_signature(session, caller, intake.now)
            answer = take_in(
                session, intake, parsed, held=not state.active, routes=state.config.routes
            )
            if answer["rejected"]:
                prune(session, caller.integration_id, int(svc.settings["REJECTED_WEBHOOKS_KEPT"]))
    except DuplicateMessage:  # the same message, sent twice at once: the other copy stored it
        return _already_accepted()
    g.hook_answer = answer  # what /metrics counts (web/metrics.py), without parsing it back
    return jsonify(answer | {"request_id": intake.request_id}), 202
