"""Alembic environment: runs migrations against the URL set by connector.db.alembic_config."""

from __future__ import annotations

from alembic import context

from connector.db import make_engine
from connector.models import Base

config = context.config


def run_migrations() -> None:
    """Run every pending migration in one transaction per migration."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL configured for migrations")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
