"""The JSON API (/api/v1) for integrations: delivery requests, hook credentials, previews, tests."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, url_for
from marshmallow import RAISE, Schema, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import AlertStatus
from connector.errors import NotFoundError
from connector.integrations.activation import activate, backfill_of, deactivate
from connector.integrations.contact import send_test_mail
from connector.integrations.credentials import (
    SECRET_FIELD,
    CredentialSchema,
    credential_json,
    issue_credential,
    list_credentials,
    revoke_credential,
)
from connector.integrations.editing import (
    EditContext,
    IntegrationChangesSchema,
    IntegrationSchema,
    create_integration,
    integration_json,
    update_integration,
)
from connector.integrations.settings import load_settings
from connector.integrations.store import (
    STATUSES,
    RequestSchema,
    load_options,
    one_request_per_slot,
    regenerate_requests,
    save_requests,
    spec_from_json,
)
from connector.integrations.strict import (
    StrictBoolean,
    StrictInteger,
    no_control_characters,
    no_control_except_lines,
    not_blank,
)
from connector.payloads.requests import SLOTS
from connector.persistence.models import Integration, utcnow
from connector.pipeline.governor import Limits, budget_status, calls_status
from connector.pipeline.preview import PreviewQuery, preview
from connector.pipeline.testdelivery import (
    TEST_TEXT_MAX,
    TEST_TITLE_MAX,
    admit_test_delivery,
    send_test,
)
from connector.web.api import api_blueprint
from connector.web.api.bodies import json_body as _body
from connector.web.hooks import services
from connector.web.params import MAX_ID, parse_query

bp = api_blueprint("integrations", __name__)


# -- bodies ----------------------------------------------------------------------------------------


class RequestsSchema(Schema):
    """PUT /integrations/<id>/requests: some requests and the per-status switches."""

    class Meta:
        unknown = RAISE

    same_for_every_status = StrictBoolean()
    deliver = fields.Dict(
        keys=fields.String(validate=validate.OneOf(STATUSES)), values=StrictBoolean()
    )
    requests = fields.List(fields.Nested(RequestSchema), load_default=list)

    @validates_schema
    def one_per_slot(self, data: dict[str, Any], **_: Any) -> None:
        """A slot appears at most once."""
        one_request_per_slot(data.get("requests") or [])


class GenerateSchema(Schema):
    """POST /integrations/<id>/requests/generate."""

    class Meta:
        unknown = RAISE

    #: Replace requests an admin changed too; without it such a generate is a 409 with diffs.
    replace_customized = StrictBoolean(load_default=False)


class PreviewSchema(Schema):
    """POST /integrations/<id>/preview."""

    class Meta:
        unknown = RAISE

    #: Unsaved requests to render instead of the stored ones of their slots.
    requests = fields.List(fields.Nested(RequestSchema), load_default=list)

    status = fields.String(validate=validate.OneOf(STATUSES), load_default=None)
    alert_id = StrictInteger(
        validate=validate.Range(min=1, max=MAX_ID), allow_none=True, load_default=None
    )
    ticket_id = StrictInteger(
        validate=validate.Range(min=1, max=MAX_ID), allow_none=True, load_default=None
    )

    @validates_schema
    def one_per_slot(self, data: dict[str, Any], **_: Any) -> None:
        """A slot appears at most once."""
        one_request_per_slot(data.get("requests") or [])


class EmptySchema(Schema):
    """A body that must be empty ({}) or absent."""

    class Meta:
        unknown = RAISE


class TestDeliverySchema(Schema):
    """POST /test-delivery, and the admin form's test ticket (the same checks)."""

    class Meta:
        unknown = RAISE

    integration_id = StrictInteger(
        validate=validate.Range(min=1, max=MAX_ID), allow_none=True, load_default=None
    )
    company_id = StrictInteger(validate=validate.Range(min=0), allow_none=True, load_default=None)
    complete = StrictBoolean(load_default=False)
    #: The ticket's title and description instead of the standard ones (longer ones are cut to
    #: the ticket system's limits, as an alert's are).
    title = fields.String(
        validate=[validate.Length(1, TEST_TITLE_MAX), not_blank, no_control_characters],
        allow_none=True,
        load_default=None,
    )
    text = fields.String(
        validate=[validate.Length(1, TEST_TEXT_MAX), not_blank, no_control_except_lines],
        allow_none=True,
        load_default=None,
    )


# -- integrations ----------------------------------------------------------------------------------


def _integration_json(session: Session, integration: Integration) -> dict[str, Any]:
    """An integration (never its secret; its tracking identifier masked) and whether its calls
    to Autotask go now."""
    now = utcnow()
    status = calls_status(session, integration.id, now)
    until = status["until"]
    limits = Limits.from_settings(services().settings)
    return integration_json(services().box, integration) | {
        "autotask_calls": status | {"until": until.isoformat() if until is not None else None},
        "autotask_budget": budget_status(session, integration.id, now, limits),
    }


def _integration(session: Session, integration_id: int) -> Integration:
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFoundError(f"no integration {integration_id}")
    return integration


@bp.get("/integrations")
def list_integrations() -> Response:
    """Every integration (never its secret or tracking identifier); it takes no query parameter."""
    parse_query({})
    with services().transaction() as session:
        rows = session.scalars(select(Integration).order_by(Integration.id))
        body = [_integration_json(session, row) for row in rows]
    return jsonify({"integrations": body})


@bp.get("/integrations/<int:integration_id>")
def get_integration(integration_id: int) -> Response:
    """One integration with its ticket settings (never its secret or tracking identifier)."""
    with services().transaction() as session:
        integration = _integration(session, integration_id)
        body = _integration_json(session, integration)
        body["settings"] = integration.settings
    return jsonify(body)


@bp.post("/integrations")
def post_integration() -> tuple[Response, int, dict[str, str]]:
    """Create an integration with its flavour's default delivery requests (201 + Location)."""
    svc = services()
    data = _body(IntegrationSchema())
    with svc.transaction() as session:
        integration = create_integration(session, EditContext.of(svc), data)
        body = _integration_json(session, integration)
        body["settings"] = integration.settings
    location = url_for(".get_integration", integration_id=body["id"])
    return jsonify(body), 201, {"Location": location}


@bp.patch("/integrations/<int:integration_id>")
def patch_integration(integration_id: int) -> Response:
    """Change some fields; `settings` keys given replace theirs; takes effect at the next event."""
    svc = services()
    data = _body(IntegrationChangesSchema(), partial=True)
    with svc.transaction() as session:
        integration = _integration(session, integration_id)
        updated = update_integration(session, EditContext.of(svc), integration, data)
        body = _integration_json(session, integration)
        body["settings"] = integration.settings
        body["changed"] = list(updated.changed)
        body["requests_regenerated"] = updated.requests_regenerated
    return jsonify(body)


# -- delivery requests -----------------------------------------------------------------------------


def _requests_state(session: Session, integration: Integration) -> dict[str, Any]:
    """The integration's delivery requests (every slot, defaults filled in) and switches."""
    settings = load_settings(integration.settings)
    options = load_options(session, integration, services().profile(integration.api_flavour))
    return {
        "same_for_every_status": options.same_for_every_status,
        "deliver": {status.value: settings.deliver[status] for status in AlertStatus},
        "requests": [options.requests[slot].to_json() for slot in SLOTS],
    }


@bp.get("/integrations/<int:integration_id>/requests")
def get_requests(integration_id: int) -> Response:
    """The integration's delivery requests, one per slot."""
    with services().transaction() as session:
        body = _requests_state(session, _integration(session, integration_id))
    return jsonify(body)


@bp.put("/integrations/<int:integration_id>/requests")
def put_requests(integration_id: int) -> Response:
    """Replace some requests and switches; all or nothing (400 with the reason and line)."""
    data = _body(RequestsSchema())
    with services().transaction() as session:
        integration = _integration(session, integration_id)
        profile = services().profile(integration.api_flavour)
        # Refused (InvalidInput, TemplateRejected) before anything is written; the
        # transaction rolls back.
        save_requests(
            session,
            integration,
            [spec_from_json(item, profile) for item in data["requests"]],
            profile,
            same_for_every_status=data.get("same_for_every_status"),
            deliver=data.get("deliver"),
        )
        body = _requests_state(session, integration)
    return jsonify(body)


@bp.post("/integrations/<int:integration_id>/requests/generate")
def generate_requests(integration_id: int) -> Response:
    """ "Generate delivery options": every request back to its default for the API flavour;
    409 with each customized request's diff unless `replace_customized` is true."""
    data = _body(GenerateSchema(), required=False)
    with services().transaction() as session:
        integration = _integration(session, integration_id)
        regenerate_requests(
            session,
            integration,
            services().profile(integration.api_flavour),
            replace_customized=data["replace_customized"],
        )
        body = _requests_state(session, integration)
    return jsonify(body)


# -- webhook credentials --------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/hook-credentials")
def list_hook_credentials(integration_id: int) -> Response:
    """The integration's webhook credentials, revoked ones too (never a secret or its hash)."""
    parse_query({})
    with services().transaction() as session:
        _integration(session, integration_id)
        body = [credential_json(row) for row in list_credentials(session, integration_id)]
    return jsonify({"hook_credentials": body})


@bp.post("/integrations/<int:integration_id>/hook-credentials")
def create_hook_credential(integration_id: int) -> tuple[Response, int]:
    """A new credential with a generated secret, shown in this answer only (201)."""
    svc = services()
    # No secret field: the server generates the token, password or HMAC secret itself.
    data = _body(CredentialSchema(sources=svc.sources))
    with svc.transaction() as session:
        _integration(session, integration_id)
        row, secret = issue_credential(
            session,
            svc.secret_box(),
            integration_id,
            scheme=data["scheme"],
            source=data["source"],
            label=data["label"],
            username=data["username"],
        )
        body = credential_json(row)
    body[SECRET_FIELD[row.scheme]] = secret
    return jsonify(body), 201


@bp.delete("/integrations/<int:integration_id>/hook-credentials/<int:credential_id>")
def revoke_hook_credential(integration_id: int, credential_id: int) -> Response:
    """Revoke a credential: from now on it is refused (revoking twice keeps the first time)."""
    with services().transaction() as session:
        _integration(session, integration_id)
        body = credential_json(revoke_credential(session, integration_id, credential_id))
    return jsonify(body)


# -- preview and test delivery ---------------------------------------------------------------------


@bp.post("/integrations/<int:integration_id>/preview")
def preview_requests(integration_id: int) -> Response:
    """The requests a status would send, rendered without sending any (secrets redacted)."""
    data = _body(PreviewSchema(), required=False)
    with services().transaction() as session:
        profile = services().profile(_integration(session, integration_id).api_flavour)
    query = PreviewQuery(
        status=AlertStatus(data["status"]) if data["status"] else None,
        alert_id=data["alert_id"],
        ticket_id=data["ticket_id"],
        requests=tuple(spec_from_json(item, profile) for item in data["requests"]),
    )
    return jsonify(preview(services(), integration_id, query))


@bp.post("/test-delivery")
def test_delivery() -> tuple[Response, int]:
    """Send a test ticket to Autotask; 200 when it worked, 400/502 with plain words when not."""
    data = _body(TestDeliverySchema(), required=False)
    admit_test_delivery(services(), f"api-token:{g.api_token_id}")
    result = send_test(
        services(),
        integration_id=data["integration_id"],
        company_id=data["company_id"],
        complete=data["complete"],
        title=data["title"],
        text=data["text"],
    )
    return jsonify(result.body), result.http_status


@bp.post("/integrations/<int:integration_id>/test-mail")
def post_test_mail(integration_id: int) -> Response:
    """Mail the integration's emergency contact a test mail; 409/502 with words when not."""
    _body(EmptySchema(), required=False)
    address = send_test_mail(services(), integration_id)
    return jsonify({"ok": True, "integration_id": integration_id, "sent_to": address})


# -- active or inactive ------------------------------------------------------------------------


class ActivateSchema(Schema):
    """POST /integrations/<id>/activate."""

    class Meta:
        unknown = RAISE

    #: Deliver what was held during the last 48 hours (true), or finish it as skipped (false).
    backfill = StrictBoolean(required=True)


def _activation_json(session: Session, integration: Integration) -> dict[str, Any]:
    """Whether the integration delivers, and what activating it would deliver."""
    now = utcnow()
    return {
        "integration_id": integration.id,
        "active": integration.active,
        "deactivated_at": (
            integration.deactivated_at.isoformat() if integration.deactivated_at else None
        ),
        **backfill_of(session, integration.id, now).to_json(),
    }


@bp.post("/integrations/<int:integration_id>/deactivate")
def deactivate_integration(integration_id: int) -> Response:
    """Switch the integration off: its events are kept, its deliveries held, nothing is sent."""
    _body(EmptySchema(), required=False)
    with services().transaction() as session:
        integration = _integration(session, integration_id)
        held = deactivate(session, integration, utcnow())
        body = _activation_json(session, integration) | {"held_now": held}
    return jsonify(body)


@bp.get("/integrations/<int:integration_id>/activation")
def get_activation(integration_id: int) -> Response:
    """What activating would deliver: held deliveries of the last 48 hours, tickets to create."""
    parse_query({})
    with services().transaction() as session:
        body = _activation_json(session, _integration(session, integration_id))
    return jsonify(body)


@bp.post("/integrations/<int:integration_id>/activate")
def activate_integration(integration_id: int) -> Response:
    """Switch the integration on, delivering what it held in the last 48 hours or not."""
    svc = services()
    data = _body(ActivateSchema())
    with svc.transaction() as session:
        integration = _integration(session, integration_id)
        done = activate(
            session,
            integration,
            utcnow(),
            backfill=data["backfill"],
            max_delivery_age=svc.max_delivery_age,
        )
        body = _activation_json(session, integration) | {
            "delivered": done.delivered,
            "skipped": done.skipped,
        }
    return jsonify(body)
