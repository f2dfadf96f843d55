"""periodic jobs run once per period (scheduler_run); what retention and reconciliation need

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:00:00

- scheduler_run: one row per (job, period) claimed by the process that runs it, so that every
  periodic job runs once per period however many processes start the scheduler.
- alert_event.received_at and delivery.event_id indexed: pruning finds old events by the one
  and, for each, any delivery still naming it by the other (without it every event deleted
  scanned the deliveries).
- alert.missing_since: since when the source, asked which alerts are there, has not listed the
  alert (reconciliation resolves it once that has lasted a grace period); ticket_link.checked_at:
  when reconciliation last asked the ticket system about the ticket.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduler_run",
        sa.Column("job", sa.String(length=50), nullable=False),
        sa.Column("period_start", _Time, nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("started_at", _Time, nullable=False),
        sa.Column("finished_at", _Time, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job", "period_start", name=op.f("pk_scheduler_run")),
    )
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduler_run_started_at"), ["started_at"], unique=False
        )
    with op.batch_alter_table("alert_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_event_received_at"), ["received_at"], unique=False
        )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_event_id"), ["event_id"], unique=False)
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("missing_since", _Time, nullable=True))
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", _Time, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.drop_column("checked_at")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("missing_since")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_event_id"))
    with op.batch_alter_table("alert_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_event_received_at"))
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduler_run_started_at"))
    op.drop_table("scheduler_run")
