"""The sandbox as a WSGI app: Autotask's REST and SOAP faces behind its limits, plus /_sandbox/."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify, request
from marshmallow import ValidationError

from adapters.sandbox.concurrency import concurrency_report
from adapters.sandbox.core import REST_PREFIX, REST_URL_PATH, SOAP_URL_PATH, Sandbox
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.faults import load_plan
from adapters.sandbox.permissions import load_security_level
from adapters.sandbox.rest import register_rest
from adapters.sandbox.soap.endpoint import register_soap
from adapters.sandbox.tenant import load_ticket_category
from adapters.sandbox.validation import normalize

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _CaseInsensitivePrefix:
    """Lower-case Autotask paths: /ATServicesRest/V1.0 and /atservicesrest/v1.0 are one API."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        lowered = path.lower()
        if lowered.startswith((REST_PREFIX, "/atservices/")):
            environ["PATH_INFO"] = lowered
        return self.app(environ, start_response)


def create_sandbox_app(sandbox: Sandbox | None = None) -> Flask:
    """Build the sandbox's Flask app around `sandbox` (a new default one if not given)."""
    sandbox = sandbox or Sandbox()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.extensions["sandbox"] = sandbox
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_rest(app, sandbox)
    register_soap(app, sandbox)
    _register_control(app, sandbox)
    app.wsgi_app = _CaseInsensitivePrefix(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _register_control(app: Flask, sandbox: Sandbox) -> None:
    """The /_sandbox/ endpoints: not part of Autotask, for tests and demos."""

    @app.get("/_sandbox/tickets")
    def sandbox_tickets() -> Response:
        return jsonify(sandbox.tickets_with_notes())

    @app.patch("/_sandbox/tickets/<int:ticket_id>")
    def sandbox_change_ticket(ticket_id: int) -> tuple[Response, int] | Response:
        # A technician changing the ticket in Autotask's web UI: no API call, no credentials,
        # not counted against the API's limits; it fires the ticket webhooks like any change.
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not body:
            return jsonify(
                {
                    "error": "invalid ticket change",
                    "fields": {"_schema": ["Expected a JSON object."]},
                }
            ), 400
        changes = dict(body)
        person = changes.pop("personID", TECHNICIAN_RESOURCE_ID)
        if isinstance(person, bool) or not isinstance(person, int):
            return jsonify(
                {"error": "invalid ticket change", "fields": {"personID": ["Expected an integer."]}}
            ), 400
        if sandbox.service.record("Tickets", ticket_id) is None:
            return jsonify({"error": f"no ticket {ticket_id}"}), 404
        try:
            sandbox.service.update(
                "Tickets",
                normalize("Tickets", changes | {"id": ticket_id}, strict=True),
                replace=False,
                person_id=person,
            )
        except SandboxError as e:
            return jsonify({"error": "invalid ticket change", "messages": e.messages}), 400
        return jsonify(sandbox.service.record("Tickets", ticket_id))

    @app.delete("/_sandbox/tickets/<int:ticket_id>")
    def sandbox_delete_ticket(ticket_id: int) -> tuple[Response, int] | Response:
        person = request.args.get("personID", str(TECHNICIAN_RESOURCE_ID))
        if not person.isdigit():
            return jsonify(
                {"error": "invalid ticket delete", "fields": {"personID": ["Expected an integer."]}}
            ), 400
        try:
            sandbox.service.delete_ticket(ticket_id, int(person))
        except SandboxError as e:
            return jsonify({"error": "; ".join(e.messages)}), e.status
        return jsonify({"deleted": ticket_id})

    @app.get("/_sandbox/webhooks")
    def sandbox_webhooks() -> Response:
        return jsonify(_webhooks(sandbox))

    @app.post("/_sandbox/webhooks")
    def sandbox_set_webhooks() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        retry = body.get("retry_seconds") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) != {"retry_seconds"}
            or isinstance(retry, bool)
            or not isinstance(retry, int | float)
            or not 0 <= retry <= 3600
        ):
            return jsonify(
                {
                    "error": "invalid webhook settings",
                    "fields": {"retry_seconds": ["Expected a number of seconds, 0 to 3600."]},
                }
            ), 400
        sandbox.webhooks.retry_seconds = float(retry)
        return jsonify(_webhooks(sandbox))

    @app.get("/_sandbox/calls")
    def sandbox_calls() -> Response:
        return jsonify([call.describe() for call in sandbox.calls()])

    @app.get("/_sandbox/concurrency")
    def sandbox_concurrency() -> Response:
        return jsonify(concurrency_report(sandbox.calls()))

    @app.post("/_sandbox/reset")
    def sandbox_reset() -> Response:
        sandbox.reset()
        return jsonify({"reset": True})

    @app.get("/_sandbox/faults")
    def sandbox_faults() -> Response:
        return jsonify(sandbox.faults.plan.describe())

    @app.post("/_sandbox/faults")
    def sandbox_set_faults() -> tuple[Response, int] | Response:
        try:
            plan = load_plan(request.get_json(silent=True))
        except ValidationError as e:
            return jsonify({"error": "invalid fault plan", "fields": e.messages}), 400
        sandbox.faults.set(plan)
        return jsonify(plan.describe())

    @app.get("/_sandbox/ticket-category")
    def sandbox_ticket_category() -> Response:
        category = sandbox.service.rules.api_ticket_category
        return jsonify(category.describe() if category else {})

    @app.post("/_sandbox/ticket-category")
    def sandbox_set_ticket_category() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        try:
            if body is None and request.get_data(as_text=True).strip() != "null":
                raise ValidationError({"_schema": ["Expected a JSON object, {} or null."]})
            category = load_ticket_category(body)
        except ValidationError as e:
            return jsonify({"error": "invalid ticket category", "fields": e.messages}), 400
        sandbox.service.rules.api_ticket_category = category
        return jsonify(category.describe() if category else {})

    @app.get("/_sandbox/permissions")
    def sandbox_permissions() -> Response:
        return jsonify(sandbox.service.security.describe())

    @app.post("/_sandbox/permissions")
    def sandbox_set_permissions() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        try:
            if body is None and request.get_data(as_text=True).strip() != "null":
                raise ValidationError({"_schema": ["Expected a JSON object, {} or null."]})
            security = load_security_level(body)
        except ValidationError as e:
            return jsonify({"error": "invalid permissions", "fields": e.messages}), 400
        sandbox.service.security = security
        return jsonify(security.describe())

    @app.get("/_sandbox/settings")
    def sandbox_settings() -> Response:
        return jsonify(_settings(sandbox))

    @app.post("/_sandbox/settings")
    def sandbox_set_settings() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(
                {"error": "invalid settings", "fields": {"_schema": ["Expected a JSON object."]}}
            ), 400
        problems = {
            key: ["Unknown setting."] if key not in SETTINGS else ["Expected true or false."]
            for key, value in body.items()
            if key not in SETTINGS or not isinstance(value, bool)
        }
        if problems:
            return jsonify({"error": "invalid settings", "fields": problems}), 400
        if "opaque_errors" in body:
            sandbox.opaque_errors = body["opaque_errors"]
        if "strict_properties" in body:
            sandbox.service.strict_properties = body["strict_properties"]
        return jsonify(_settings(sandbox))

    @app.get("/_sandbox/limits")
    def sandbox_limits() -> Response:
        settings = sandbox.limits.settings
        return jsonify(
            {
                "hourly_threshold": settings.hourly_threshold,
                "timeframe_minutes": settings.timeframe_minutes,
                "latency_tiers": [list(tier) for tier in settings.latency_tiers],
                "thread_limit": settings.thread_limit,
                "latency_seconds": settings.latency_seconds,
                "current_usage": sandbox.limits.usage(),
            }
        )

    @app.get("/_sandbox/")
    def sandbox_index() -> Response:
        user = sandbox.config.user
        return jsonify(
            {
                "sandbox": "Autotask PSA simulator",
                "rest_base": f"{request.host_url}{REST_URL_PATH}v1.0/",
                "soap_url": f"{request.host_url}{SOAP_URL_PATH}",
                "username": user.username,
                "tickets": len(sandbox.state.all("Tickets")),
            }
        )


#: Who changes a ticket through PATCH /_sandbox/tickets/<id> unless the body names a personID:
#: Sam Chen, a technician of the seeded resources (not the API user).
TECHNICIAN_RESOURCE_ID = 29682887


def _webhooks(sandbox: Sandbox) -> dict[str, object]:
    """The ticket webhooks, their delivery settings and every callout attempt made."""
    hooks = sandbox.webhooks
    return {
        "retry_seconds": hooks.retry_seconds,
        "attempts": hooks.attempts,
        "timeout_seconds": hooks.timeout,
        "webhooks": [
            {
                **item,
                "fields": hooks.fields_of(item["id"]),
                "excludedResources": hooks.excluded_resources_of(item["id"]),
            }
            for item in hooks.all()
        ],
        "callouts": list(hooks.log),
    }


#: The switches POST /_sandbox/settings changes at run time (booleans).
SETTINGS = ("opaque_errors", "strict_properties")


def _settings(sandbox: Sandbox) -> dict[str, bool]:
    """The run-time switches, as GET /_sandbox/settings answers them."""
    return {
        "opaque_errors": sandbox.opaque_errors,
        "strict_properties": sandbox.service.strict_properties,
    }
