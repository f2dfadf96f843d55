"""Alembic environment: migrations run against the URL that persistence.db.alembic_config sets."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from connector.persistence.db import make_engine
from connector.persistence.models import Base

config = context.config


def run_migrations() -> None:
    """Run every pending migration in one transaction per migration."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL configured for migrations")
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table (copy, drop, rename); with foreign keys on,
            # dropping a table that other rows reference fails. SQLite only honours the pragma
            # outside a transaction, so it is set on the driver's connection before BEGIN, and
            # the references are checked before the migration commits (Alembic "batch" docs).
            _driver(connection).execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke references: {broken[:5]}")
        if sqlite:
            _driver(connection).execute("PRAGMA foreign_keys=ON")
    engine.dispose()


def _driver(connection: Connection) -> Any:
    """The sqlite3 connection under SQLAlchemy's, in autocommit (see connector.persistence.db)."""
    return connection.connection.driver_connection


run_migrations()
