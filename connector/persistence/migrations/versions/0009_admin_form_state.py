"""what the admin form needs stored: integrations on/off, discards with a reason, call bodies

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:00:00

- integration.active, deactivated_at: an inactive integration keeps its events but delivers
  nothing; activating it offers to deliver what was kept during the last 48 hours.
- delivery.discarded_at, discard_reason: a dead letter an admin discarded, and why.
- rejected_webhook.discarded_at, discard_reason: the same for a refused webhook.
- api_call.request, response: each Autotask call as sent and answered, secrets redacted and
  bodies cut, for the integration log; an index on api_call.delivery_id to find an alert's calls.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("deactivated_at", _Time, nullable=True))
    for table in ("delivery", "rejected_webhook"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("discarded_at", _Time, nullable=True))
            batch_op.add_column(sa.Column("discard_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("api_call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("response", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_call_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_call_delivery_id"))
        batch_op.drop_column("response")
        batch_op.drop_column("request")
    for table in ("rejected_webhook", "delivery"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("discard_reason")
            batch_op.drop_column("discarded_at")
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
        batch_op.drop_column("active")
