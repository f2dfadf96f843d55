"""Bearer-token checks for webhooks and the JSON API; tokens are compared by their hashes."""

from __future__ import annotations

from flask import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import AuthError
from connector.models import ApiToken, HookToken
from connector.secrets import token_hash


def bearer_token(request: Request) -> str:
    """The `Authorization: Bearer …` token, or AuthError. Tokens in the URL are never accepted."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing or malformed Authorization: Bearer token")
    return token.strip()


def hook_integration(session: Session, token: str) -> int:
    """The integration a webhook token belongs to, or AuthError."""
    # Looking up the SHA-256 of a 256-bit token leaks nothing usable through timing.
    row = session.scalar(
        select(HookToken).where(
            HookToken.token_sha256 == token_hash(token), HookToken.revoked_at.is_(None)
        )
    )
    if row is None:
        raise AuthError("invalid webhook token")
    return row.integration_id


def check_api_token(session: Session, token: str) -> None:
    """Raise AuthError unless the token is a live API token."""
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_sha256 == token_hash(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        raise AuthError("invalid API token")
