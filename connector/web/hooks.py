"""POST /hooks/<source>: verify, parse, commit, then answer 202. Never waits on Autotask."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from connector.errors import ConfigError, PayloadError, UnknownSourceError
from connector.hook_auth import DuplicateMessage, remember_signature
from connector.ingest import ingest
from connector.integration import IntegrationSettings, load_settings
from connector.models import Integration, utcnow
from connector.services import Services
from connector.sources import configured_source
from connector.web.auth import hook_caller, signed

bp = Blueprint("hooks", __name__)


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


def _raw_body() -> bytes:
    """The body as sent, read once (cached); 413 past MAX_CONTENT_LENGTH, before any parsing."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # Werkzeug cuts a chunked body (no Content-Length) at the limit instead of refusing it;
        # the cut cannot be told from a body of exactly the limit, so that is refused too.
        raise RequestEntityTooLarge()
    return raw


def _settings(session: Session, integration_id: int) -> IntegrationSettings:
    """The integration's validated settings (checked at start, so a failure here is a bug)."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise ConfigError(f"integration {integration_id} has vanished")
    try:
        return load_settings(integration.settings)
    except ValidationError as e:
        raise ConfigError(f"integration {integration.name} has invalid settings") from e


def _already_accepted() -> tuple[Response, int]:
    """200 for a Standard Webhooks retry of a message accepted before: stored once already."""
    note = "this webhook-id was accepted before; nothing was stored again"
    return jsonify({"accepted": [], "duplicate": True, "message": note}), 200


@bp.post("/hooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Accept a webhook; 202 with the event ids only once they are committed."""
    svc = services()
    adapter = svc.sources.get(source)
    if adapter is None:
        raise UnknownSourceError(
            f"no source named {source!r}; known: {', '.join(sorted(svc.sources))}"
        )
    now = utcnow()
    # An HMAC signs the raw body, so a signed request's body is read (not parsed) first.
    signed_body = _raw_body() if signed(request) else b""
    with svc.transaction() as session:
        caller = hook_caller(session, request, source, now=now, body=signed_body, box=svc.box)
        settings = _settings(session, caller.integration_id)
    if caller.duplicate:
        return _already_accepted()
    if not request.is_json:
        raise UnsupportedMediaType("send the webhook as Content-Type: application/json")
    raw = _raw_body()
    try:
        payload = request.get_json(silent=True)
    except RecursionError as e:  # e.g. "[[[[…" a million deep: the decoder gives up
        raise PayloadError(f"the body is nested too deeply to parse ({len(raw)} bytes)") from e
    if payload is None:
        raise PayloadError(f"the body is not valid JSON ({len(raw)} bytes)")
    alerts = configured_source(adapter, settings.source_options.get(source, {})).parse(payload)
    integration_id = caller.integration_id
    now = utcnow()
    try:
        with svc.transaction() as session:
            # With the events: a failed commit (503) lets the sender retry it.
            remember_signature(session, caller, now)
            accepted = ingest(
                session,
                integration_id,
                settings,
                alerts,
                now=now,
                max_delivery_age=svc.max_delivery_age,
            )
    except DuplicateMessage:  # the same message, sent twice at once: the other copy stored it
        return _already_accepted()
    body = {
        "accepted": [
            {"event_id": a.event_id, "alert_id": a.alert_id, "disposition": a.disposition}
            for a in accepted
        ]
    }
    return jsonify(body), 202
