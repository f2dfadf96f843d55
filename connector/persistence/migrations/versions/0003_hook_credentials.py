"""hook credentials: bearer, basic or HMAC per integration, optionally per source; replay guard

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00

hook_token becomes hook_credential: every existing token is kept as a bearer credential valid on
every source (source NULL), with its hash, label and revocation unchanged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _hook_token_table() -> sa.TableClause:
    return sa.table(
        "hook_token",
        sa.column("integration_id"),
        sa.column("token_sha256"),
        sa.column("label"),
        sa.column("created_at"),
        sa.column("revoked_at"),
    )


def _hook_credential_table() -> sa.TableClause:
    return sa.table(
        "hook_credential",
        sa.column("integration_id"),
        sa.column("scheme"),
        sa.column("source"),
        sa.column("token_sha256"),
        sa.column("label"),
        sa.column("created_at"),
        sa.column("revoked_at"),
    )


def upgrade() -> None:
    op.create_table(
        "hook_credential",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("scheme", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("username", sa.String(length=254), nullable=True),
        sa.Column("password_sha256", sa.String(length=64), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column(
            "created_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "revoked_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_hook_credential_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_credential")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_hook_credential_token_sha256")),
    )
    with op.batch_alter_table("hook_credential", schema=None) as batch_op:
        batch_op.create_index("ix_hook_credential_username", ["username"], unique=False)

    op.create_table(
        "hook_signature",
        sa.Column("id", _Id, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "expires_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_signature")),
        sa.UniqueConstraint("digest", name=op.f("uq_hook_signature_digest")),
    )
    with op.batch_alter_table("hook_signature", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hook_signature_expires_at"), ["expires_at"], unique=False
        )

    # Ids are not copied: PostgreSQL's sequence would not know them and the next insert would clash.
    old, new = _hook_token_table(), _hook_credential_table()
    op.execute(
        new.insert().from_select(
            ["integration_id", "scheme", "token_sha256", "label", "created_at", "revoked_at"],
            sa.select(
                old.c.integration_id,
                sa.literal("bearer", sa.String(10)),
                old.c.token_sha256,
                old.c.label,
                old.c.created_at,
                old.c.revoked_at,
            ),
        )
    )
    op.drop_table("hook_token")


def downgrade() -> None:
    op.create_table(
        "hook_token",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "revoked_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_hook_token_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_token")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_hook_token_token_sha256")),
    )
    # Only any-source bearer tokens fit the old table; a source-limited one copied back would
    # widen to every source, so it is dropped along with basic and HMAC credentials.
    old, new = _hook_token_table(), _hook_credential_table()
    op.execute(
        old.insert().from_select(
            ["integration_id", "token_sha256", "label", "created_at", "revoked_at"],
            sa.select(
                new.c.integration_id,
                new.c.token_sha256,
                new.c.label,
                new.c.created_at,
                new.c.revoked_at,
            ).where(new.c.scheme == "bearer", new.c.source.is_(None)),
        )
    )
    with op.batch_alter_table("hook_signature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hook_signature_expires_at"))
    op.drop_table("hook_signature")
    with op.batch_alter_table("hook_credential", schema=None) as batch_op:
        batch_op.drop_index("ix_hook_credential_username")
    op.drop_table("hook_credential")
