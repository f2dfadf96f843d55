"""admin users of the web form, their sessions, and failed sign-ins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00

- admin_user: who may sign in to /admin/ (argon2id password hashes); created by
  `connector create-admin` or from CONNECTOR_ADMIN_USERNAME/PASSWORD, never by default.
- admin_session: signed-in sessions, the cookie's token kept only as a SHA-256 hash, so that
  signing out ends a session for every process.
- login_failure: failed sign-ins by username and remote address, to slow down guessing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = connector.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_user",
        sa.Column("id", _Id, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("last_login_at", _Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_user")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_user_username")),
    )
    op.create_table(
        "admin_session",
        sa.Column("id", _Id, nullable=False),
        sa.Column("admin_user_id", _Id, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("expires_at", _Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_user_id"],
            ["admin_user.id"],
            name=op.f("fk_admin_session_admin_user_id_admin_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_session")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_admin_session_token_sha256")),
    )
    op.create_index(
        op.f("ix_admin_session_admin_user_id"), "admin_session", ["admin_user_id"], unique=False
    )
    op.create_index(
        op.f("ix_admin_session_expires_at"), "admin_session", ["expires_at"], unique=False
    )
    op.create_table(
        "login_failure",
        sa.Column("id", _Id, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index(
        "ix_login_failure_username_at", "login_failure", ["username", "at"], unique=False
    )
    op.create_index(
        "ix_login_failure_remote_addr_at", "login_failure", ["remote_addr", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_login_failure_remote_addr_at", table_name="login_failure")
    op.drop_index("ix_login_failure_username_at", table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_index(op.f("ix_admin_session_expires_at"), table_name="admin_session")
    op.drop_index(op.f("ix_admin_session_admin_user_id"), table_name="admin_session")
    op.drop_table("admin_session")
    op.drop_table("admin_user")
