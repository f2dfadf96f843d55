"""one Autotask budget per database: which database an integration's API user is in, and what
Autotask last said of the database's hourly count

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:00:00

- integration.database_id: the zone lookup's database id (Autotask's CI). Kept zones are
  forgotten (zone_checked_at cleared), so each integration's next call looks its zone up once
  more and learns it; zone lookups are not counted by Autotask.
- database_usage: per database, the count, threshold and timeframe ThresholdInformation last
  reported, and when; admissions of the database's integrations lock its row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.add_column(sa.Column("database_id", sa.String(length=100), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_integration_database_id"), ["database_id"], unique=False
        )
    op.execute(sa.text("UPDATE integration SET zone_checked_at = NULL"))
    op.create_table(
        "database_usage",
        sa.Column("database_id", sa.String(length=100), nullable=False),
        sa.Column("reported_count", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("timeframe_minutes", sa.Integer(), nullable=True),
        sa.Column("reported_at", _Time, nullable=True),
        sa.PrimaryKeyConstraint("database_id", name=op.f("pk_database_usage")),
    )


def downgrade() -> None:
    op.drop_table("database_usage")
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_database_id"))
        batch_op.drop_column("database_id")
