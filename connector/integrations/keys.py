"""The keys of the stored secrets (SECRET_KEYS): checked at start, and rotated.

Every secret the connector keeps in clear form somewhere is stored encrypted with the first key
of SECRET_KEYS and can be read with any of them (MultiFernet). Two things follow:

- `check_keys`: at start, every stored secret must open with the configured keys. A wrong or
  missing key is found then, with the setting named, not at the first delivery as a 500.
- `rotate_keys` (`connector keys rotate`): re-encrypt every stored secret with the first key,
  so that an old key can then be dropped from SECRET_KEYS.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from connector.errors import ConfigError
from connector.persistence.models import HookCredential, Integration, TicketWebhook
from connector.services import Services

#: Every column that holds a secret encrypted with SECRET_KEYS, and what names its row for people.
ENCRYPTED_COLUMNS: tuple[tuple[InstrumentedAttribute[str | None], str], ...] = (
    (Integration.secret_encrypted, "integration"),
    (Integration.integration_code_encrypted, "integration"),
    (HookCredential.secret_encrypted, "webhook credential"),
    (TicketWebhook.secret_encrypted, "ticket webhook"),
)


def _stored(services: Services) -> list[tuple[str, str]]:
    """Every stored encrypted value: (what it belongs to, the token)."""
    found = []
    with services.transaction() as session:
        for column, kind in ENCRYPTED_COLUMNS:
            model = column.class_
            for row_id, token in session.execute(
                select(model.id, column).where(column.is_not(None))
            ):
                found.append((f"{kind} {row_id} ({column.key})", token))
    return found


def check_keys(services: Services) -> int:
    """Open every stored secret with SECRET_KEYS (how many there are); ConfigError naming the
    setting and the secrets no key opens (the service must not start: it could deliver nothing).
    """
    stored = _stored(services)
    if not stored:
        return 0
    box = services.secret_box()
    unreadable = []
    for label, token in stored:
        try:
            box.decrypt(token)
        except ConfigError:
            unreadable.append(label)
    if unreadable:
        raise ConfigError(
            f"SECRET_KEYS cannot decrypt {len(unreadable)} of the {len(stored)} stored secrets"
            f" ({', '.join(unreadable[:5])}{', …' if len(unreadable) > 5 else ''}): set"
            " CONNECTOR_SECRET_KEYS to the key they were stored with (a new key goes first, the"
            " old ones stay until `connector keys rotate` has run)"
        )
    return len(stored)


def rotate_keys(services: Services) -> int:
    """Re-encrypt every stored secret with the first key of SECRET_KEYS, in one transaction;
    how many.

    Refuses (ConfigError, nothing changed) when any stored secret opens with none of the keys.
    """
    check_keys(services)
    box = services.secret_box()
    rotated = 0
    with services.transaction() as session:
        for column, _kind in ENCRYPTED_COLUMNS:
            model = column.class_
            for row in session.scalars(select(model).where(column.is_not(None))):
                token = getattr(row, column.key)
                try:
                    setattr(row, column.key, box.rotate(token))
                except InvalidToken as e:  # changed since the check: refuse all of it
                    raise ConfigError(
                        f"SECRET_KEYS cannot decrypt {column.key} of row {row.id}"
                    ) from e
                rotated += 1
    return rotated
