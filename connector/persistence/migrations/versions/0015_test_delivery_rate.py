"""test deliveries sent, counted per sender for the per-minute limit

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 21:30:00

- test_delivery_sent: one row per test delivery an admin or an API token sent, kept a minute
  (connector.pipeline.testdelivery.admit_test_delivery).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "test_delivery_sent",
        sa.Column("id", _Id, nullable=False),
        sa.Column("sender", sa.String(length=100), nullable=False),
        sa.Column("at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_delivery_sent")),
    )
    op.create_index(
        "ix_test_delivery_sent_sender_at", "test_delivery_sent", ["sender", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_test_delivery_sent_sender_at", table_name="test_delivery_sent")
    op.drop_table("test_delivery_sent")
