"""rejected webhooks: authenticated webhooks refused with a 4xx, as their senders were told

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rejected_webhook",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("body_size", sa.BigInteger(), nullable=True),
        sa.Column("body_excerpt", sa.Text(), nullable=True),
        sa.Column(
            "received_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_rejected_webhook_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_webhook")),
    )
    with op.batch_alter_table("rejected_webhook", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rejected_webhook_integration_order", ["integration_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rejected_webhook", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_webhook_integration_order")
    op.drop_table("rejected_webhook")
