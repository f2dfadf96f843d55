"""Autotask Alert Connector: monitoring alerts in, Autotask tickets out, each kept in step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config_override: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application: the one place where settings, blueprints and adapters are wired.

    Args:
        config_override: settings that win over defaults, the TOML file and the environment
            (tests pass their own here).

    Returns:
        The configured Flask app, with its Services in `app.extensions["connector"]`. Nothing is
        started and no connection is opened: serving and migrating are the caller's business.

    Raises:
        ConfigError: a setting is missing or invalid (the message names it).
    """
    from flask import Response

    from adapters import load_sources, load_target_profiles, load_ticket_callouts
    from connector.config import load_settings
    from connector.errors import register_error_handlers
    from connector.logs import request_id, stamp_request_ids
    from connector.services import build_services
    from connector.web import admin, health, hooks, metrics, ticket_webhooks
    from connector.web.api import (
        activity,
        alerts,
        catalog,
        integrations,
        openapi,
        rejected_webhooks,
        sources,
        tenants,
    )
    from connector.web.params import DatabaseIdConverter, TenantConverter
    from connector.wiring import catalog_factory, mail_sender, target_factory

    settings = load_settings(config_override)
    stamp_request_ids()
    app = Flask(__name__)
    app.config.update(settings)
    services = build_services(settings, load_sources(), load_target_profiles())
    services.target_factory = target_factory(services)
    services.catalog_factory = catalog_factory(services)
    services.mail_sender = mail_sender(settings)
    services.ticket_callouts = load_ticket_callouts()(
        settings["TICKET_WEBHOOK_SIGNATURE_HEADER"], settings["TICKET_WEBHOOK_SIGNATURE_ALGORITHM"]
    )
    app.extensions["connector"] = services
    register_error_handlers(app)
    # Before any route: every `<int:…>` id is one a database can hold, else a 404 (never a 500).
    app.url_map.converters["int"] = DatabaseIdConverter
    # `<tenant:…>`: a tenant in a path, slashes and all.
    app.url_map.converters["tenant"] = TenantConverter
    app.register_blueprint(health.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(ticket_webhooks.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(rejected_webhooks.bp)
    app.register_blueprint(integrations.bp)
    app.register_blueprint(sources.bp)
    app.register_blueprint(activity.bp)
    app.register_blueprint(catalog.bp)
    app.register_blueprint(tenants.bp)
    app.register_blueprint(openapi.bp)
    # After the Services: the metrics read the database through them and count /hooks/ answers.
    app.register_blueprint(metrics.bp)
    app.register_blueprint(admin.bp)
    # The admin form's session cookie, sign-in gate, CSRF and headers for every path under
    # /admin/. Only there does a browser's cookie authenticate: hooks, the JSON API and metrics
    # take tokens or signatures, which CSRF cannot forge, so they stay unchecked.
    admin.protect(app)

    @app.after_request
    def answer_with_request_id(response: Response) -> Response:
        # The id the request's log lines and JSON errors carry (connector.logs.request_id).
        response.headers["X-Request-Id"] = request_id()
        # On every answer (the admin pages set stricter ones of their own): no content-type
        # sniffing, no referrer, and no copy kept by a cache (answers carry alerts, tickets
        # and, once, new credentials).
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cache-Control", "no-store")
        return response

    return app
