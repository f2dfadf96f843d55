"""Webhook credentials per integration: bearer tokens, HTTP Basic, HMAC-signed bodies.

Each credential belongs to one integration and is valid on one source or, with no source, on
every source. Several can be live at once, so a secret is rotated by adding a new credential,
moving the sender to it, then revoking the old one.

- bearer: `Authorization: Bearer <token>`; only SHA-256(token) is stored.
- basic: `Authorization: Basic base64(<username>:<password>)`; the username and SHA-256(password).
- hmac: `X-Connector-Timestamp: <unix seconds>` and
  `X-Connector-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`; the
  secret is stored encrypted (it is needed in clear to compute the MAC). A timestamp more than
  300 s from the server's clock is refused, and so is a signature already accepted (replay).
  The same hmac credential also verifies Standard Webhooks senders (Svix and the like):
  `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key,
  "<id>.<timestamp>." + raw body)>` (several space-separated during the sender's own rotation);
  the key is the secret's bytes, or for a `whsec_<base64>` secret the decoded bytes. A message id
  accepted before is a replay (standardwebhooks.com, "Verifying webhooks").
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import ConfigError, NotFoundError
from connector.integrations.strict import no_control_characters
from connector.persistence.models import HookCredential, utcnow
from connector.secrets import SecretBox, new_token, same_hash, token_hash

SCHEMES = ("bearer", "basic", "hmac")
#: Shortest token, password or HMAC secret accepted from the configuration.
MIN_SECRET_LENGTH = 16
#: RFC 7617: a Basic user id cannot contain a colon; control characters are refused too.
_USERNAME = re.compile(r"[^:\x00-\x1f\x7f]+\Z")
#: Which field of a credential holds its secret, per scheme.
SECRET_FIELD = {"bearer": "token", "basic": "password", "hmac": "secret"}


# -- managing ----------------------------------------------------------------------------------


class CredentialSchema(Schema):
    """A webhook credential's public fields; `sources` (if given) limits the source slug."""

    class Meta:
        unknown = RAISE

    scheme = fields.String(required=True, validate=validate.OneOf(SCHEMES))
    source = fields.String(allow_none=True, load_default=None)
    label = fields.String(
        validate=[validate.Length(max=100), no_control_characters], load_default=""
    )
    username = fields.String(
        validate=[
            validate.Length(min=1, max=254),
            validate.Regexp(_USERNAME, error="must not contain ':' or control characters"),
        ],
        load_default=None,
    )

    def __init__(self, *, sources: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = sorted(sources)

    @validates_schema
    def known_source_and_username(self, data: dict[str, Any], **_: Any) -> None:
        """A source must be a registered slug; a username belongs to basic, which needs one."""
        errors: dict[str, list[str]] = {}
        source = data.get("source")
        if source is not None and self.sources and source not in self.sources:
            errors["source"] = [f"unknown source; known: {', '.join(self.sources)}"]
        if data.get("scheme") == "basic" and not data.get("username"):
            errors["username"] = ["required for the basic scheme"]
        if data.get("scheme") in ("bearer", "hmac") and data.get("username") is not None:
            errors["username"] = ["only the basic scheme has a username"]
        if errors:
            raise ValidationError(errors)


class ConfiguredCredentialSchema(CredentialSchema):
    """One entry of INTEGRATION.hook_credentials: the public fields plus the secret itself."""

    token = fields.String(validate=validate.Length(min=MIN_SECRET_LENGTH, max=500))
    password = fields.String(validate=validate.Length(min=MIN_SECRET_LENGTH, max=500))
    secret = fields.String(validate=validate.Length(min=MIN_SECRET_LENGTH, max=500))

    @validates_schema
    def one_secret_of_the_scheme(self, data: dict[str, Any], **_: Any) -> None:
        """Exactly the secret field of the scheme: token, password or secret."""
        wanted = SECRET_FIELD.get(data.get("scheme", ""))
        if wanted is None:
            return
        errors = {
            name: [f"not used by the {data['scheme']} scheme (it takes {wanted!r})"]
            for name in SECRET_FIELD.values()
            if name != wanted and name in data
        }
        if wanted not in data:
            errors[wanted] = [f"required for the {data['scheme']} scheme"]
        if errors:
            raise ValidationError(errors)


def new_credential(
    box: SecretBox,
    integration_id: int,
    *,
    scheme: str,
    secret: str,
    source: str | None = None,
    label: str = "",
    username: str | None = None,
) -> HookCredential:
    """A credential row holding `secret` as its scheme stores it (hash, or encrypted for hmac)."""
    row = HookCredential(integration_id=integration_id, scheme=scheme, source=source, label=label)
    if scheme == "bearer":
        row.token_sha256 = token_hash(secret)
    elif scheme == "basic":
        row.username = username
        row.password_sha256 = token_hash(secret)
    elif scheme == "hmac":
        row.secret_encrypted = box.encrypt(secret)
    else:
        raise ValueError(f"unknown scheme {scheme!r}")
    return row


def issue_credential(
    session: Session,
    box: SecretBox,
    integration_id: int,
    *,
    scheme: str,
    source: str | None = None,
    label: str = "",
    username: str | None = None,
) -> tuple[HookCredential, str]:
    """Store a credential with a freshly generated 256-bit secret; return it and the secret."""
    secret = new_token()
    row = new_credential(
        box,
        integration_id,
        scheme=scheme,
        secret=secret,
        source=source,
        label=label,
        username=username,
    )
    session.add(row)
    session.flush()
    return row, secret


def list_credentials(session: Session, integration_id: int) -> list[HookCredential]:
    """The integration's credentials, revoked ones too, oldest first."""
    return list(
        session.scalars(
            select(HookCredential)
            .where(HookCredential.integration_id == integration_id)
            .order_by(HookCredential.id)
        )
    )


def find_credential(session: Session, integration_id: int, credential_id: int) -> HookCredential:
    """The integration's credential with this id; NotFoundError if it has none."""
    row = session.get(HookCredential, credential_id)
    if row is None or row.integration_id != integration_id:
        raise NotFoundError(
            f"no webhook credential {credential_id} in integration {integration_id}"
        )
    return row


def revoke_credential(session: Session, integration_id: int, credential_id: int) -> HookCredential:
    """Revoke a credential: refused from now on (revoking twice keeps the first time)."""
    row = find_credential(session, integration_id, credential_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def credential_json(row: HookCredential) -> dict[str, Any]:
    """A credential as the API shows it: never its secret, hash or ciphertext."""
    return {
        "id": row.id,
        "integration_id": row.integration_id,
        "scheme": row.scheme,
        "source": row.source,
        "label": row.label,
        "username": row.username,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def _configured_match(
    session: Session, box: SecretBox, integration_id: int, item: Mapping[str, Any]
) -> HookCredential | None:
    """The stored credential (live or revoked) holding the configured item's secret, if any."""
    scheme = item["scheme"]
    if scheme == "bearer":
        row = session.scalar(
            select(HookCredential).where(HookCredential.token_sha256 == token_hash(item["token"]))
        )
        if row is not None and row.integration_id != integration_id:
            raise ConfigError(
                "INTEGRATION hook_credentials: a token is in use by another integration"
            )
        return row
    rows = session.scalars(
        select(HookCredential)
        .where(HookCredential.integration_id == integration_id, HookCredential.scheme == scheme)
        .order_by(HookCredential.id)
    )
    for row in rows:
        if scheme == "basic":
            if row.username == item["username"] and same_hash(
                item["password"], row.password_sha256 or ""
            ):
                return row
        elif hmac.compare_digest(
            box.decrypt(row.secret_encrypted or "").encode(), item["secret"].encode()
        ):
            return row
    return None


def sync_configured_credentials(
    session: Session,
    box: SecretBox,
    integration_id: int,
    configured: Any,
    *,
    sources: Collection[str] = (),
) -> None:
    """Make INTEGRATION.hook_credentials exist; idempotent, so restarts add no duplicates.

    A credential already stored (found by its secret) gets the configured source and label; a
    revoked one stays revoked. Removing an entry from the configuration does not revoke it: use
    DELETE /api/v1/integrations/<id>/hook-credentials/<cid>.
    """
    if not isinstance(configured, Sequence) or isinstance(configured, str):
        raise ConfigError("INTEGRATION hook_credentials must be a list of credentials")
    try:
        items: list[dict[str, Any]] = ConfiguredCredentialSchema(sources=sources, many=True).load(
            configured
        )
    except ValidationError as e:
        # marshmallow's messages name fields and rules, never the values (no secret leaks here).
        raise ConfigError(f"INTEGRATION hook_credentials is invalid: {e.messages}") from e
    for item in items:
        row = _configured_match(session, box, integration_id, item)
        if row is None:
            session.add(
                new_credential(
                    box,
                    integration_id,
                    scheme=item["scheme"],
                    secret=item[SECRET_FIELD[item["scheme"]]],
                    source=item["source"],
                    label=item["label"],
                    username=item["username"],
                )
            )
            # Flushed at once, so a second entry with the same secret finds this one.
            session.flush()
        else:
            row.source = item["source"]
            row.label = item["label"]
