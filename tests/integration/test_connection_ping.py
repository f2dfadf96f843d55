"""Pooled PostgreSQL connections are pinged only after sitting idle (persistence/db.py): one the
server dropped meanwhile is replaced before use, and a connection in constant use is not pinged
at every transaction (SQLAlchemy's pool_pre_ping did that: a round trip per webhook)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from connector.persistence import db
from connector.persistence.db import make_engine

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@on_postgresql
def test_a_connection_dropped_while_idle_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    engine = make_engine(database_url)
    other = make_engine(database_url)
    try:
        dropped = backend_pid(engine)
        with other.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
        # The pooled connection is dead: the ping finds out and the pool makes a new one.
        assert backend_pid(engine) != dropped
    finally:
        engine.dispose()
        other.dispose()


@on_postgresql
def test_a_connection_in_constant_use_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 3600.0)
    engine = make_engine(database_url)
    pings: list[object] = []
    original = engine.dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return bool(original(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    try:
        first = backend_pid(engine)
        assert [backend_pid(engine) for _ in range(5)] == [first] * 5
        assert pings == []
    finally:
        engine.dispose()
