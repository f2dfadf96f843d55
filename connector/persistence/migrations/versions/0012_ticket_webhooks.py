"""two-way close: Autotask ticket webhooks and tickets completed in Autotask

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00

- ticket_webhook: per integration, the webhook registered with the ticket system and the
  (encrypted) secret its callouts are signed with.
- ticket_link.closed_remotely_at, _as, _by: a person completed or deleted the ticket in the
  ticket system (state closed_remotely); an index on ticket_id finds the link a callout
  names.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_remotely_at", _Time, nullable=True))
        batch_op.add_column(sa.Column("closed_remotely_as", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("closed_remotely_by", sa.String(length=50), nullable=True))
        batch_op.create_index("ix_ticket_link_ticket_id", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_webhook",
        sa.Column("id", _Id, nullable=False),
        sa.Column("integration_id", _Id, nullable=False),
        sa.Column("remote_id", _Id, nullable=True),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("excluded_resource_id", _Id, nullable=True),
        sa.Column("last_callout_at", _Time, nullable=True),
        sa.Column("deactivated_at", _Time, nullable=True),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integration.id"],
            name=op.f("fk_ticket_webhook_integration_id_integration"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_webhook")),
        sa.UniqueConstraint("integration_id", name=op.f("uq_ticket_webhook_integration_id")),
    )


def downgrade() -> None:
    op.drop_table("ticket_webhook")
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_link_ticket_id")
        batch_op.drop_column("closed_remotely_by")
        batch_op.drop_column("closed_remotely_as")
        batch_op.drop_column("closed_remotely_at")
