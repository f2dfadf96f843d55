"""Signing in and out of the admin form, and the gate every other /admin/ page stands behind.

The session cookie holds only a random token; the database holds its hash and whose it is, so
signing out ends the session for good. Signing in starts a new session from an empty one
(no session fixation); failed attempts are slowed down (connector/admins/throttle.py).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from connector.admins import throttle
from connector.admins.accounts import (
    SignedIn,
    authenticate,
    close_session,
    is_admin,
    normalize_username,
    open_session,
    session_admin,
)
from connector.admins.passwords import MAX_PASSWORD_LENGTH
from connector.web.admin import bp
from connector.web.admin.security import admin_context, is_admin_path
from connector.web.hooks import services

logger = logging.getLogger(__name__)

#: The session key holding the sign-in token (a key's name, not a secret).
TOKEN = "admin_token"  # noqa: S105
#: Pages under /admin/ anyone may see.
PUBLIC_ENDPOINTS = {"admin.login", "admin.static"}
WRONG = "Wrong username or password."


class LoginForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type information
    """Username and password (the CSRF token comes with FlaskForm)."""

    username = StringField(
        "Username", validators=[DataRequired("Enter your username."), Length(max=200)]
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD_LENGTH)],
    )


def current_admin() -> SignedIn:
    """The signed-in admin of this request (every /admin/ page but the public ones has one)."""
    found: SignedIn = g.admin
    return found


def signed_in() -> SignedIn | None:
    """The admin whose live session this request's cookie carries, if any (also in g.admin)."""
    if "admin" not in g:
        token = session.get(TOKEN)
        who = None
        if isinstance(token, str):
            with services().transaction() as db:
                who = session_admin(db, token, admin_context().clock())
        g.admin = who
    found: SignedIn | None = g.admin
    return found


def require_admin() -> BaseResponse | None:
    """The gate of /admin/: without a live session, off to the sign-in page (and back after)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if signed_in() is not None:
        return None
    session.pop(TOKEN, None)  # ended or expired: forget it
    back = request.full_path if request.method == "GET" else None
    target = url_for("admin.login", next=safe_next(back) if back else None)
    return redirect(target, 302 if request.method == "GET" else 303)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: `raw` when it is a page of this admin form, else home.

    Only a local path under /admin/ is taken, so the sign-in page cannot send anyone to another
    site (no scheme, no host, no `//` or backslash tricks, no control characters).
    """
    home = url_for("admin.home")
    if not raw or any(ord(c) < 32 or c == "\\" for c in raw) or raw.startswith("//"):
        return home
    parts = urlsplit(raw.rstrip("?"))
    if parts.scheme or parts.netloc or not is_admin_path(parts.path):
        return home
    if any(segment in ("..", ".") for segment in parts.path.lower().replace("%2e", ".").split("/")):
        return home  # a browser would resolve /admin/../x to /x
    if parts.path.startswith(url_for("admin.login")) or parts.path.startswith("/admin/static/"):
        return home
    return raw.rstrip("?")


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str | tuple[str, int, dict[str, str]]:
    """Show the sign-in form; check it (slowed down after repeated failures)."""
    target = safe_next(request.args.get("next"))
    if signed_in() is not None:
        return redirect(target)
    form = LoginForm()
    if not form.validate_on_submit():
        return _page(form, target)
    username = normalize_username(form.username.data)
    remote = request.remote_addr or ""
    now = admin_context().clock()
    with services().transaction() as db:
        wait = throttle.refused_for(db, username, remote, now)
        if wait:
            logger.warning("admin.login_throttled", extra={"remote_addr": remote})
            message = f"Too many failed sign-ins; try again in {wait} seconds."
            return _page(form, target, error=message), 429, {"Retry-After": str(wait)}
        who = authenticate(db, username, form.password.data, now)
        if who is None:
            throttle.record_failure(db, username, remote, now)
            # The name only when an admin has it: a password typed into the wrong box stays out.
            known = {"username": username} if is_admin(db, username) else {}
        else:
            throttle.clear_failures(db, username)
            old = session.get(TOKEN)
            if isinstance(old, str):
                close_session(db, old)
            token = open_session(db, who, now, current_app.permanent_session_lifetime)
    if who is None:
        logger.warning("admin.login_failed", extra={"remote_addr": remote, **known})
        return _page(form, target, error=WRONG)
    session.clear()  # a new session from nothing: no value set before signing in survives
    session[TOKEN] = token
    session.permanent = True
    g.admin = who
    logger.info("admin.login", extra={"username": who.username, "remote_addr": remote})
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out: the session ends in the database too, so its cookie is worthless from now on."""
    token = session.get(TOKEN)
    if isinstance(token, str):
        with services().transaction() as db:
            close_session(db, token)
    logger.info("admin.logout", extra={"username": current_admin().username})
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("admin.login"), 303)


def _page(form: LoginForm, target: str, *, error: str | None = None) -> str:
    next_arg = target if target != url_for("admin.home") else None
    return render_template("admin/login.html", form=form, error=error, next=next_arg)
