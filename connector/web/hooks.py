"""POST /hooks/<source>: verify, parse, commit, then answer 202. Never waits on Autotask."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from connector.errors import ConfigError, PayloadError, UnknownSourceError
from connector.ingest import ingest
from connector.integration import load_settings
from connector.models import Integration, utcnow
from connector.services import Services
from connector.web.auth import bearer_token, hook_integration

bp = Blueprint("hooks", __name__)


def services() -> Services:
    """The app's Services."""
    found: Services = current_app.extensions["connector"]
    return found


@bp.post("/hooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Accept a webhook; 202 with the event ids only once they are committed."""
    svc = services()
    adapter = svc.sources.get(source)
    if adapter is None:
        raise UnknownSourceError(
            f"no source named {source!r}; known: {', '.join(sorted(svc.sources))}"
        )
    token = bearer_token(request)
    with svc.transaction() as session:
        integration_id = hook_integration(session, token)
    if not request.is_json:
        raise UnsupportedMediaType("send the webhook as Content-Type: application/json")
    raw = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH, before any parsing
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # Werkzeug cuts a chunked body (no Content-Length) at the limit instead of refusing it;
        # the cut cannot be told from a body of exactly the limit, so that is refused too.
        raise RequestEntityTooLarge()
    try:
        payload = request.get_json(silent=True)
    except RecursionError as e:  # e.g. "[[[[…" a million deep: the decoder gives up
        raise PayloadError(f"the body is nested too deeply to parse ({len(raw)} bytes)") from e
    if payload is None:
        raise PayloadError(f"the body is not valid JSON ({len(raw)} bytes)")
    alerts = adapter.parse(payload)
    now = utcnow()
    with svc.transaction() as session:
        integration = session.get(Integration, integration_id)
        if integration is None:
            raise ConfigError(f"integration {integration_id} has vanished")
        try:
            settings = load_settings(integration.settings)
        except ValidationError as e:
            raise ConfigError(f"integration {integration.name} has invalid settings") from e
        accepted = ingest(
            session,
            integration_id,
            settings,
            alerts,
            now=now,
            max_delivery_age=svc.max_delivery_age,
        )
    body = {
        "accepted": [
            {"event_id": a.event_id, "alert_id": a.alert_id, "disposition": a.disposition}
            for a in accepted
        ]
    }
    return jsonify(body), 202
