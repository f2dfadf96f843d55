"""delivery requests: per alert status and action, what the connector sends to Autotask

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_request",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "integration_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=4), nullable=False),
        sa.Column("id_path", sa.String(length=500), nullable=False),
        sa.Column(
            "updated_at", connector.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_delivery_request_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_request")),
        sa.UniqueConstraint(
            "integration_id",
            "status",
            "action",
            name=op.f("uq_delivery_request_integration_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("delivery_request")
