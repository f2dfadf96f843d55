"""governor: per-integration pause and circuit breaker, concurrent-call slots per endpoint

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 11:23:05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_slot",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("expires_at", _Time, nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_api_slot_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_slot")),
        sa.UniqueConstraint(
            "integration_id", "endpoint", "slot", name=op.f("uq_api_slot_integration_id")
        ),
    )
    op.create_table(
        "governor_state",
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("paused_until", _Time, nullable=True),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("breaker", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("open_until", _Time, nullable=True),
        sa.Column("probe_holder", sa.String(length=100), nullable=True),
        sa.Column("probe_expires_at", _Time, nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_governor_state_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_governor_state")),
    )


def downgrade() -> None:
    op.drop_table("governor_state")
    op.drop_table("api_slot")
