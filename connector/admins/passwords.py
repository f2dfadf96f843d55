"""Admin passwords: the length rule, and argon2id hashes through argon2-cffi's PasswordHasher."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Fewer characters are refused: length is what makes a password hard to guess (NIST SP 800-63B).
MIN_PASSWORD_LENGTH = 12
#: More are refused too: argon2 takes any length, but a megabyte "password" is only a burden.
MAX_PASSWORD_LENGTH = 1024

#: argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile). Tests may swap in a
#: cheaper one; a hash made with other parameters is rehashed at the next sign-in.
HASHER = PasswordHasher()


def password_problem(password: str) -> str | None:
    """Why `password` cannot be an admin's password, in words; None when it can."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    """The encoded argon2id hash to store (salt and parameters included)."""
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash`; an unreadable hash matches nothing."""
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether `stored_hash` was made with other parameters than HASHER's (rehash at sign-in)."""
    return HASHER.check_needs_rehash(stored_hash)


def spend_a_verification(password: str) -> None:
    """Verify against a hash no password matches, so an unknown username takes as long."""
    verify_password(_dummy_hash(HASHER), password)


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    # Made once per hasher (so with the parameters a real verification would use).
    return hasher.hash("no admin has this password: it only spends the time of a check")
