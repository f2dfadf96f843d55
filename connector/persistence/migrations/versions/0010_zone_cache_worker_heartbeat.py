"""what speed and readiness need stored: the zone an integration was found in, live workers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00

- integration.zone_url, zone_checked_at: the zone lookup's answer, kept across restarts so
  that every start of every process does not spend an Autotask call on it.
- worker_heartbeat: each running worker's last beat, for GET /readyz ("a worker is alive").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zone_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("zone_checked_at", _Time, nullable=True))
    op.create_table(
        "worker_heartbeat",
        sa.Column("worker_id", sa.String(length=100), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("started_at", _Time, nullable=False),
        sa.Column("beat_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeat")),
    )
    with op.batch_alter_table("worker_heartbeat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_heartbeat_beat_at"), ["beat_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_heartbeat_beat_at"))
    op.drop_table("worker_heartbeat")
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.drop_column("zone_checked_at")
        batch_op.drop_column("zone_url")
