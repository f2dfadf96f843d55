"""The admin form's guards on the app: session cookie, CSRF, sign-in gate, headers, error pages.

Flask's session cookie is signed with a key derived (HKDF) from the first of SECRET_KEYS, so
there is one key to manage; the others stay valid for cookies signed before a rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, current_app, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from connector.errors import ConnectorError
from connector.logs import request_id
from connector.persistence.models import utcnow
from connector.secrets import derived_key

PREFIX = "/admin"
#: HKDF's `info` for the session-signing key: another purpose gets other bytes from the same key.
SESSION_KEY_PURPOSE = "connector admin session cookie v1"

#: Sent with every answer under /admin/. No inline script or style: the CSP forbids both.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none';"
        " object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
#: Sent too when the cookie is Secure (the form is served over https): browsers then keep to it.
HSTS = "max-age=31536000"


@dataclass
class AdminContext:
    """What the admin views share: the clock (tests set their own instead of sleeping)."""

    clock: Callable[[], datetime] = field(default=utcnow)


def admin_context() -> AdminContext:
    """The app's AdminContext."""
    found: AdminContext = current_app.extensions["connector_admin"]
    return found


def is_admin_path(path: str) -> bool:
    """Whether `path` belongs to the admin form."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def cookie_secure(settings: Mapping[str, Any]) -> bool:
    """Whether the session cookie is Secure: ADMIN_COOKIE_SECURE, or a PUBLIC_URL on https."""
    public_url = str(settings.get("PUBLIC_URL") or "")
    return bool(settings["ADMIN_COOKIE_SECURE"]) or public_url.lower().startswith("https://")


class AdminSessions(SecureCookieSessionInterface):
    """The signed session cookie, opened only under /admin/: nothing else reads a session
    (webhooks and the API prove themselves with tokens), and opening one on every webhook
    (a serializer built, a cookie looked for) cost about 3 % of its handling."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The admin's session under /admin/; elsewhere Flask's null session (read-only)."""
        if not is_admin_path(request.path):
            return None
        return super().open_session(app, request)


def protect(app: Flask, *, gate: Callable[[], BaseResponse | None]) -> None:
    """Put the admin form's guards on `app` (create_app calls it once, after the blueprints).

    `gate` answers a request under /admin/ that may not go on (no signed-in admin). CSRF is
    checked on every state-changing request under /admin/, whichever blueprint serves it: the
    session cookie authenticates nothing else. Everything outside /admin/ (hooks, the JSON API,
    metrics) proves itself with a bearer token or a signature, never a browser's cookie, so CSRF
    cannot reach it and it is not checked there (nor need new API blueprints be exempted).
    """
    settings = app.config
    keys = list(settings["SECRET_KEYS"])
    if keys:
        app.secret_key = derived_key(keys[0], SESSION_KEY_PURPOSE)
        app.config["SECRET_KEY_FALLBACKS"] = [
            derived_key(key, SESSION_KEY_PURPOSE) for key in keys[1:]
        ]
    secure = cookie_secure(settings)
    lifetime = timedelta(hours=float(settings["ADMIN_SESSION_HOURS"]))
    app.config.update(
        # The __Host- prefix makes browsers refuse the cookie unless Secure, host-only, path /.
        SESSION_COOKIE_NAME="__Host-connector_admin" if secure else "connector_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=lifetime,
        # Checked by the gate below, for every path under /admin/ (not app-wide: see above).
        WTF_CSRF_CHECK_DEFAULT=False,
        # A form stays good as long as the session that showed it.
        WTF_CSRF_TIME_LIMIT=int(lifetime.total_seconds()),
    )
    app.session_interface = AdminSessions()
    app.extensions["connector_admin"] = AdminContext()
    csrf = CSRFProtect(app)

    @app.before_request
    def admin_gate() -> BaseResponse | None:
        if not is_admin_path(request.path):
            return None
        if not app.secret_key:
            return error_page(503, "The admin form needs SECRET_KEYS: set CONNECTOR_SECRET_KEYS.")
        # Signed out first: a signed-out POST goes to the sign-in page rather than a CSRF error.
        answer = gate()
        if answer is None:
            csrf.protect()  # POST, PUT, PATCH, DELETE without a valid token: CSRFError (400)
        return answer

    @app.after_request
    def admin_headers(response: Response) -> Response:
        if is_admin_path(request.path):
            response.headers.update(SECURITY_HEADERS)
            if secure:
                response.headers["Strict-Transport-Security"] = HSTS
        return response

    _html_errors_under_admin(app)


def _html_errors_under_admin(app: Flask) -> None:
    """Answer HTTP errors and the connector's own under /admin/ with a page; elsewhere keep
    the JSON envelope."""
    json_answer = app.error_handler_spec[None][None][HTTPException]
    json_connector_answer = app.error_handler_spec[None][None][ConnectorError]
    json_unexpected_answer = app.error_handler_spec[None][None][Exception]

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        answer = json_unexpected_answer(error)  # logged there, with the request id
        if not is_admin_path(request.path):
            return answer
        return error_page(
            500,
            f"Something went wrong on our side (request id {request_id()}, which the logs"
            " name). Go back and try again.",
        )

    @app.errorhandler(ConnectorError)
    def connector_error(error: ConnectorError) -> Any:
        if not is_admin_path(request.path):
            return json_connector_answer(error)
        return error_page(error.status, str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if not is_admin_path(request.path):
            return json_answer(error)
        if isinstance(error, CSRFError):
            return error_page(
                400,
                "This form has expired or did not come from this site (CSRF check failed)."
                " Go back, reload the page and try again.",
            )
        return error_page(error.code or 500, error.description or error.name)


def error_page(status: int, message: str) -> Response:
    """An admin error page: the status and what to do, in words."""
    page = render_template("admin/error.html", status=status, message=message)
    return Response(page, status=status)
