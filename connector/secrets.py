"""Secrets at rest: Autotask credentials are stored encrypted (Fernet), tokens only as hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector.errors import ConfigError


class Secret(str):
    """A string that never shows itself in repr or logs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<secret>"


class SecretBox:
    """Encrypts with the first key and decrypts with any, so keys can be rotated."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError("SECRET_KEYS is empty: set CONNECTOR_SECRET_KEYS to a Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as e:
            raise ConfigError(
                "SECRET_KEYS holds an invalid key: each must be 32 url-safe base64-encoded bytes"
                " (make one with `connector keys new`)"
            ) from e

    def encrypt(self, plaintext: str) -> str:
        """Return the token to store."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> Secret:
        """Return the stored secret; a token no key opens is a configuration error (fail closed)."""
        try:
            return Secret(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken as e:
            raise ConfigError(
                "a stored secret cannot be decrypted with SECRET_KEYS: wrong or missing key"
            ) from e

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored token under the first key."""
        return self._fernet.rotate(token.encode()).decode()


def derived_key(key: str, purpose: str) -> bytes:
    """A 32-byte key for `purpose` derived from a SECRET_KEYS key (HKDF-SHA256).

    So one configured key serves every use (signing admin sessions …) without the same bytes
    ever keying two algorithms.
    """
    try:
        material = base64.urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError) as e:
        raise ConfigError("SECRET_KEYS holds a key that is not url-safe base64") from e
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        material
    )


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


def new_token() -> str:
    """A fresh bearer token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest stored in place of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(token_hash(token), stored_hash)
