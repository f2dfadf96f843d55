"""Admin accounts and their sessions: create, sign in (argon2id), sign out.

Usernames are compared without regard to case (kept lower case). Sign-in answers the same for an
unknown username and a wrong password, and takes as long: an unknown name spends a verification
too.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.admins.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    spend_a_verification,
    verify_password,
)
from connector.errors import ConfigError, ConnectorError
from connector.persistence.models import AdminSession, AdminUser
from connector.secrets import token_hash

logger = logging.getLogger(__name__)

#: Letters, digits and . _ @ + - (an e-mail address fits), 1 to 100 of them.
USERNAME = re.compile(r"[\w.@+-]{1,100}")


class AccountRefused(ConnectorError):
    """An admin account that cannot be made as asked (the message says why, never the password)."""

    status = 400


@dataclass(frozen=True)
class SignedIn:
    """Who a live session belongs to."""

    user_id: int
    username: str


def normalize_username(raw: str) -> str:
    """The username as kept and compared: without surrounding whitespace, lower case."""
    return raw.strip().lower()


def username_problem(username: str) -> str | None:
    """Why `username` (normalized) cannot be an admin's name, in words; None when it can."""
    if not USERNAME.fullmatch(username):
        return "the username must be 1 to 100 letters, digits or . _ @ + -"
    return None


def any_admin(session: Session) -> bool:
    """Whether at least one admin exists."""
    return session.scalar(select(AdminUser.id).limit(1)) is not None


def is_admin(session: Session, username: str) -> bool:
    """Whether an admin has this (normalized) username."""
    return session.scalar(select(AdminUser.id).where(AdminUser.username == username)) is not None


def create_admin(session: Session, username: str, password: str, *, how: str) -> AdminUser:
    """Make an admin; AccountRefused for a bad username or password or a name already taken.

    `how` says who asked (cli, environment), for the log line.
    """
    name = normalize_username(username)
    problem = username_problem(name) or password_problem(password)
    if problem:
        raise AccountRefused(problem)
    if is_admin(session, name):
        raise AccountRefused(f"an admin named {name!r} exists already")
    user = AdminUser(username=name, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    logger.info("admin.created", extra={"username": name, "how": how})
    return user


def ensure_configured_admin(session: Session, settings: Mapping[str, Any]) -> AdminUser | None:
    """Make the admin of ADMIN_USERNAME / ADMIN_PASSWORD when both are set and no admin exists.

    For unattended starts. Once any admin exists these settings are ignored (changing them
    changes no password). A username or password the rules refuse is a ConfigError.
    """
    username, password = settings["ADMIN_USERNAME"], settings["ADMIN_PASSWORD"]
    if not (username and password) or any_admin(session):
        return None
    try:
        with session.begin_nested():
            return create_admin(session, username, password, how="environment")
    except AccountRefused as e:
        raise ConfigError(f"ADMIN_USERNAME / ADMIN_PASSWORD: {e}") from e
    except IntegrityError:
        # Another process starting at the same moment made it first: that is the same admin.
        return None


def authenticate(session: Session, username: str, password: str, now: datetime) -> SignedIn | None:
    """The admin whose username and password these are, or None (unknown name or wrong password).

    A hash made with older argon2 parameters is replaced by one with today's.
    """
    name = normalize_username(username)
    user = session.scalar(select(AdminUser).where(AdminUser.username == name))
    if user is None:
        spend_a_verification(password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return SignedIn(user.id, user.username)


def open_session(session: Session, who: SignedIn, now: datetime, lifetime: timedelta) -> str:
    """Start a session for `who`; returns the token for the cookie (only its hash is kept)."""
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            admin_user_id=who.user_id,
            token_sha256=token_hash(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def session_admin(session: Session, token: str, now: datetime) -> SignedIn | None:
    """The admin a live session token belongs to; None for an unknown, ended or expired one."""
    # Looked up by the token's hash: what the index compares tells nothing of the token.
    row = session.execute(
        select(AdminUser.id, AdminUser.username)
        .join(AdminSession, AdminSession.admin_user_id == AdminUser.id)
        .where(AdminSession.token_sha256 == token_hash(token), AdminSession.expires_at > now)
    ).first()
    return None if row is None else SignedIn(row.id, row.username)


def close_session(session: Session, token: str) -> None:
    """End the session of `token` for good (signing out)."""
    session.execute(delete(AdminSession).where(AdminSession.token_sha256 == token_hash(token)))
