"""rejected webhooks keep their whole body, name the refused alert of a batch, and replay once

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

- rejected_webhook.body: the whole body as received (bounded by max_content_length), so a refused
  webhook is never lost and can be replayed; NULL for a 413 (never read) and for older rows.
- rejected_webhook.alert_index: for one refused alert of an accepted batch (status 202), its
  index in the webhook's list.
- rejected_webhook.replayed_at, replay_result: when a row was replayed and what that produced;
  a row is replayed at most once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rejected_webhook", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("alert_index", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "replayed_at",
                connector.persistence.models.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("replay_result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rejected_webhook", schema=None) as batch_op:
        batch_op.drop_column("replay_result")
        batch_op.drop_column("replayed_at")
        batch_op.drop_column("alert_index")
        batch_op.drop_column("body")
