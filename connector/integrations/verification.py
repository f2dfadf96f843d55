"""Verifying a webhook's credential: bearer, HTTP Basic, HMAC and Standard Webhooks, replays.

How each scheme is presented and stored: integrations/credentials.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from connector.errors import AuthError
from connector.persistence.db import insert_for
from connector.persistence.models import HookCredential, HookSignature
from connector.secrets import SecretBox, same_hash, token_hash

TIMESTAMP_HEADER = "X-Connector-Timestamp"
SIGNATURE_HEADER = "X-Connector-Signature"
#: Standard Webhooks (github.com/standard-webhooks/standard-webhooks, spec "Signature scheme").
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
#: The spec's secret prefix: what follows is the base64 of the key bytes.
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: How far a signed request's timestamp may be from the server's clock, either way.
TOLERANCE_SECONDS = 300

_TIMESTAMP = re.compile(r"\d{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})", re.IGNORECASE)
_REPLAY = "this signature was accepted before (replay): sign every request with a fresh timestamp"


@dataclass(frozen=True)
class HookCaller:
    """Who sent a webhook: the integration and the credential that proved it."""

    integration_id: int
    credential_id: int
    scheme: str
    #: For an HMAC request, the signature to remember (hex) and until when it could be replayed.
    signature: str | None = None
    signature_expires_at: datetime | None = None
    #: Standard Webhooks: a message id seen before is the sender retrying a delivered message
    #: (its retries keep the id), answered 200 with nothing stored rather than refused, or the
    #: sender would retry until it disables the endpoint.
    retry_is_duplicate: bool = False
    #: Set when this is such a retry.
    duplicate: bool = False


class DuplicateMessage(Exception):
    """A Standard Webhooks message whose id was accepted before: answer 200, store nothing."""


# -- verifying ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a sender puts after `sha256=`: over "<timestamp>." + the raw body."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _usable_on(source: str) -> ColumnElement[bool]:
    """Live credentials valid on `source`."""
    return (HookCredential.revoked_at.is_(None)) & or_(
        HookCredential.source.is_(None), HookCredential.source == source
    )


def _caller(row: HookCredential) -> HookCaller:
    return HookCaller(row.integration_id, row.id, row.scheme)


def check_bearer(session: Session, token: str, source: str) -> HookCaller:
    """The caller a bearer token identifies on `source`, or AuthError."""
    # Looking up the SHA-256 of a 256-bit token leaks nothing usable through timing.
    row = session.scalar(
        select(HookCredential).where(
            HookCredential.scheme == "bearer",
            HookCredential.token_sha256 == token_hash(token),
            _usable_on(source),
        )
    )
    if row is None:
        raise AuthError(
            f"bearer token not accepted for source {source!r}"
            " (unknown, revoked, or limited to another source)"
        )
    return _caller(row)


def check_basic(session: Session, username: str, password: str, source: str) -> HookCaller:
    """The caller HTTP Basic credentials identify on `source`, or AuthError."""
    rows = session.scalars(
        select(HookCredential)
        .where(
            HookCredential.scheme == "basic",
            HookCredential.username == username,
            _usable_on(source),
        )
        .order_by(HookCredential.id)
    ).all()
    # Every candidate is compared, each in constant time (a dummy one when there is none).
    matches = [same_hash(password, row.password_sha256 or "") for row in rows]
    if not rows:
        same_hash(password, "0" * 64)
    found = next((row for row, match in zip(rows, matches, strict=True) if match), None)
    if found is None:
        raise AuthError(
            f"basic credentials not accepted for source {source!r}"
            " (unknown user, wrong password, revoked, or limited to another source)"
        )
    return _caller(found)


def parse_signature(header: str) -> bytes:
    """The 32 bytes of `sha256=<64 hex digits>`, or AuthError."""
    match = _SIGNATURE.fullmatch(header)
    if match is None:
        raise AuthError(f"malformed {SIGNATURE_HEADER} header: expected sha256=<64 hex digits>")
    return bytes.fromhex(match.group(1))


def _check_timestamp(timestamp: str, header: str, now: datetime) -> datetime:
    """The moment a signed request claims, or AuthError if malformed or out of the window."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise AuthError(f"malformed {header} header: expected Unix seconds")
    skew = int(now.timestamp()) - int(timestamp)
    if abs(skew) > TOLERANCE_SECONDS:
        raise AuthError(
            f"{header} is {abs(skew)} s {'old' if skew > 0 else 'in the future'};"
            f" at most {TOLERANCE_SECONDS} s either way is accepted (check the sender's clock)"
        )
    return datetime.fromtimestamp(int(timestamp), UTC)


def _signer(
    session: Session,
    box: SecretBox,
    source: str,
    mac: Callable[[str], bytes],
    presented: Sequence[bytes],
) -> HookCredential | None:
    """The live HMAC credential of `source` whose `mac` equals one of the presented signatures."""
    rows = session.scalars(
        select(HookCredential)
        .where(HookCredential.scheme == "hmac", _usable_on(source))
        .order_by(HookCredential.id)
    ).all()
    # A handful of secrets per source: all are tried, each compared in constant time.
    found = None
    for row in rows:
        expected = mac(box.decrypt(row.secret_encrypted or ""))
        matched = [hmac.compare_digest(expected, signature) for signature in presented]
        if any(matched) and found is None:
            found = row
    return found


def _unless_replayed(session: Session, caller: HookCaller) -> HookCaller:
    """`caller`, unless its replay key was accepted before."""
    seen = session.scalar(select(HookSignature.id).where(HookSignature.digest == caller.signature))
    if seen is None:
        return caller
    if caller.retry_is_duplicate:
        return replace(caller, duplicate=True)
    raise AuthError(_REPLAY)


def check_hmac(
    session: Session,
    box: SecretBox,
    source: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: datetime,
) -> HookCaller:
    """The caller whose live HMAC secret signed `timestamp` and `body`, or AuthError.

    Checked in order: both headers well-formed, the timestamp within TOLERANCE_SECONDS of `now`,
    a secret of the source reproducing the signature, the signature not accepted before.
    """
    if not timestamp:
        raise AuthError(f"{SIGNATURE_HEADER} needs {TIMESTAMP_HEADER} (Unix seconds)")
    if not signature:
        raise AuthError(f"{TIMESTAMP_HEADER} needs {SIGNATURE_HEADER} (sha256=<hex>)")
    moment = _check_timestamp(timestamp, TIMESTAMP_HEADER, now)
    presented = parse_signature(signature.strip())
    found = _signer(
        session,
        box,
        source,
        lambda secret: bytes.fromhex(sign(secret, timestamp, body)),
        [presented],
    )
    if found is None:
        raise AuthError(
            f"{SIGNATURE_HEADER} does not match the body and timestamp with any live HMAC secret"
            f" for source {source!r}"
        )
    expires_at = moment + timedelta(seconds=TOLERANCE_SECONDS)
    caller = HookCaller(found.integration_id, found.id, "hmac", presented.hex(), expires_at)
    return _unless_replayed(session, caller)


def standard_key(secret: str) -> bytes:
    """The HMAC key of a secret: a `whsec_<base64>` secret's decoded bytes, else its UTF-8."""
    if secret.startswith(STANDARD_SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(STANDARD_SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            pass  # not base64 after all: an ordinary secret that happens to start so
    return secret.encode()


def sign_standard(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature a Standard Webhooks sender puts in `webhook-signature`."""
    content = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(standard_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def parse_standard_signatures(header: str) -> list[bytes]:
    """The v1 signatures of a `webhook-signature` header (other versions are skipped)."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    if not found:
        raise AuthError(
            f"malformed {STANDARD_SIGNATURE_HEADER} header: expected v1,<base64 HMAC-SHA256>"
        )
    return found


def check_standard_webhook(
    session: Session,
    box: SecretBox,
    source: str,
    *,
    message_id: str,
    timestamp: str,
    signatures: str,
    body: bytes,
    now: datetime,
) -> HookCaller:
    """The caller whose live HMAC secret signed a Standard Webhooks request, or AuthError."""
    missing = [
        name
        for name, value in (
            (STANDARD_ID_HEADER, message_id),
            (STANDARD_TIMESTAMP_HEADER, timestamp),
            (STANDARD_SIGNATURE_HEADER, signatures),
        )
        if not value
    ]
    if missing:
        raise AuthError(f"a Standard Webhooks request needs the {', '.join(missing)} header(s)")
    moment = _check_timestamp(timestamp, STANDARD_TIMESTAMP_HEADER, now)
    presented = parse_standard_signatures(signatures)
    content = f"{message_id}.{timestamp}.".encode() + body
    found = _signer(
        session,
        box,
        source,
        lambda secret: hmac.new(standard_key(secret), content, hashlib.sha256).digest(),
        presented,
    )
    if found is None:
        raise AuthError(
            f"no {STANDARD_SIGNATURE_HEADER} entry matches the id, timestamp and body with any"
            f" live HMAC secret for source {source!r}"
        )
    # The spec's replay key is the message id (a sender retries with the same id and a fresh
    # signature); kept per integration, since ids are only unique per sender.
    key = hashlib.sha256(f"{found.integration_id}:{message_id}".encode()).hexdigest()
    expires_at = moment + timedelta(seconds=TOLERANCE_SECONDS)
    caller = HookCaller(
        found.integration_id, found.id, "hmac", key, expires_at, retry_is_duplicate=True
    )
    return _unless_replayed(session, caller)


def remember_signature(session: Session, caller: HookCaller, now: datetime) -> None:
    """Record an HMAC caller's signature in the caller's transaction; AuthError if it is a replay.

    Expired signatures are purged first (their timestamps are refused anyway). The unique digest
    makes two copies of one request sent at once fail here, whichever check they passed before.
    """
    if caller.signature is None or caller.signature_expires_at is None:
        return
    session.execute(delete(HookSignature).where(HookSignature.expires_at < now))
    statement = (
        insert_for(session.get_bind().dialect.name, HookSignature)
        .values(digest=caller.signature, expires_at=caller.signature_expires_at)
        .on_conflict_do_nothing(index_elements=[HookSignature.digest])
        .returning(HookSignature.id)
    )
    if session.scalar(statement) is None:
        if caller.retry_is_duplicate:
            raise DuplicateMessage(caller.signature)
        raise AuthError(_REPLAY)
