"""Credential checks for webhooks (bearer, basic, HMAC) and the JSON API (bearer)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from flask import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import AuthError, ConfigError
from connector.integrations.verification import (
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    HookCaller,
    check_basic,
    check_bearer,
    check_hmac,
    check_standard_webhook,
)
from connector.persistence.models import ApiToken
from connector.secrets import SecretBox, token_hash


def bearer_token(request: Request) -> str:
    """The `Authorization: Bearer …` token, or AuthError. Tokens in the URL are never accepted."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing or malformed Authorization: Bearer token")
    return token.strip()


#: Headers that make a request a signed one: the connector's own, or Standard Webhooks'.
_OWN_HEADERS = (SIGNATURE_HEADER, TIMESTAMP_HEADER)
_STANDARD_HEADERS = (STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER)


def signed(request: Request) -> bool:
    """Whether the request carries HMAC headers (so its raw body must be read to verify it)."""
    return any(name in request.headers for name in _OWN_HEADERS + _STANDARD_HEADERS)


def hook_caller(
    session: Session,
    request: Request,
    source: str,
    *,
    now: datetime,
    body: bytes = b"",
    box: SecretBox | None = None,
) -> HookCaller:
    """Who sent a webhook to `source`, from its HMAC headers or its Authorization; or AuthError.

    HMAC headers, when present, decide alone (`body` must then be the raw body, `box` the
    secret box); otherwise `Authorization: Bearer` or `Basic`. Tokens in the URL never count.
    """
    if signed(request):
        if box is None:
            raise ConfigError("SECRET_KEYS is empty: HMAC secrets cannot be read")
        headers = request.headers
        if not any(name in headers for name in _OWN_HEADERS):
            return check_standard_webhook(
                session,
                box,
                source,
                message_id=headers.get(STANDARD_ID_HEADER, "").strip(),
                timestamp=headers.get(STANDARD_TIMESTAMP_HEADER, "").strip(),
                signatures=headers.get(STANDARD_SIGNATURE_HEADER, "").strip(),
                body=body,
                now=now,
            )
        return check_hmac(
            session,
            box,
            source,
            timestamp=request.headers.get(TIMESTAMP_HEADER, "").strip(),
            signature=request.headers.get(SIGNATURE_HEADER, "").strip(),
            body=body,
            now=now,
        )
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if not value:
            raise AuthError("malformed Authorization: Bearer header: the token is empty")
        return check_bearer(session, value, source)
    if scheme.lower() == "basic":
        username, password = _basic(value)
        return check_basic(session, username, password, source)
    raise AuthError(
        "missing webhook credentials: send Authorization: Bearer <token>, Authorization: Basic,"
        f" or the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers"
    )


def _basic(value: str) -> tuple[str, str]:
    """The username and password of `Authorization: Basic <base64(user:password)>`."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, colon, password = decoded.partition(":")
    if not (username and colon and password):
        raise AuthError(
            "malformed Authorization: Basic header: expected base64 of <username>:<password>"
        )
    return username, password


def check_api_token(session: Session, token: str) -> int:
    """The live API token's id; AuthError unless the token is one."""
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_sha256 == token_hash(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        raise AuthError("invalid API token")
    return row.id
