"""SQLite writers queue on a lock file (persistence/db.py, _WriterLocked), not on SQLite's
sleeping busy handler: a second writer waits while the first holds its transaction, goes on as
soon as the first commits or rolls back, and a transaction that could not begin lets go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connector.persistence.db import make_engine

DEADLINE = 30.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path}/w.sqlite")
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield made
    made.dispose()


def second_writer(engine: Engine, order: list[str], started: threading.Event) -> threading.Thread:
    def write() -> None:
        started.set()
        with engine.begin() as connection:
            order.append("second began")
            connection.execute(text("INSERT INTO t VALUES (2)"))

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_a_second_writer_waits_for_the_first_and_then_goes_on(engine: Engine, ending: str) -> None:
    order: list[str] = []
    started = threading.Event()
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(text("INSERT INTO t VALUES (1)"))
    thread = second_writer(engine, order, started)
    assert started.wait(DEADLINE)
    # It cannot begin while the first transaction is open (a bounded look, not a wait for it).
    thread.join(0.2)
    assert thread.is_alive() and order == []
    order.append(f"first {ending}")
    getattr(transaction, ending)()
    connection.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert order == [f"first {ending}", "second began"]
    with engine.connect() as reader:
        rows = sorted(reader.execute(text("SELECT n FROM t")).scalars())
    assert rows == ([1, 2] if ending == "commit" else [2])


def test_the_lock_file_sits_beside_the_database_owner_only(engine: Engine, tmp_path: Path) -> None:
    lock = tmp_path / "w.sqlite.writer-lock"
    assert lock.exists()
    assert lock.stat().st_mode & 0o077 == 0
