"""The real databases the suite runs against are reachable and of the versions we support."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa


def test_sqlite_supports_wal_and_returning(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/probe.sqlite")
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
    engine.dispose()
    assert mode == "wal"
    # RETURNING (used for atomic claims) needs SQLite 3.35.
    assert sqlite3.sqlite_version_info >= (3, 35)


def test_postgresql_is_reachable_and_at_least_15(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SHOW server_version_num").scalar()
    engine.dispose()
    assert int(str(version)) >= 150000
