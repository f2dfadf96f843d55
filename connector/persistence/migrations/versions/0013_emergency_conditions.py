"""emergency contact: broken conditions and when they were mailed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:00:00

- emergency_condition: per (integration, condition) the current or last episode of a broken
  condition (since, cleared at), when its contact was mailed about it and about its end, and
  the claim of the checker sending a mail now (pipeline/emergency.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "emergency_condition",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("condition", sa.String(length=30), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("since", _Time, nullable=False),
        sa.Column("last_mailed_at", _Time, nullable=True),
        sa.Column("cleared_at", _Time, nullable=True),
        sa.Column("recovery_mailed_at", _Time, nullable=True),
        sa.Column("mail_claimed_by", sa.String(length=100), nullable=True),
        sa.Column("mail_claimed_until", _Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_emergency_condition_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_condition")),
        sa.UniqueConstraint(
            "integration_id", "condition", name=op.f("uq_emergency_condition_integration_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("emergency_condition")
