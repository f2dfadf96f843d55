"""Engine, sessions and migrations. SQLite (WAL) by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        factory = _writer_locked(database) if database and database != ":memory:" else None
        connect_args: dict[str, Any] = {"timeout": 30}
        if factory is not None:
            connect_args["factory"] = factory
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own BEGIN handling is off so that BEGIN IMMEDIATE can be issued.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # IMMEDIATE takes the write lock at the start, so concurrent writers queue instead
            # of failing with "database is locked" on upgrade. They queue on the writer lock
            # first (see _writer_locked), then, for anything else, on busy_timeout.
            raw = connection.connection.dbapi_connection
            if isinstance(raw, _WriterLocked):
                raw.take_writer_lock()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if isinstance(raw, _WriterLocked):
                    raw.give_writer_lock()
                raise

        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


#: A pooled connection unused this long is pinged before it is handed out.
PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle (SQLAlchemy's pool_pre_ping
    pings at every checkout: a round trip per transaction, an eighth of a webhook's time).

    One that fails the ping is replaced (the pool retries the checkout with a new connection).
    A connection in constant use is not pinged: should the server restart under load, its next
    statement fails, the request answers 503 (the sender retries; the worker retries) and the
    pool, seeing a disconnect, replaces every connection it holds.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as e:
            raise exc.DisconnectionError("the database connection was lost while idle") from e
        if not alive:
            raise exc.DisconnectionError("the database connection was lost while idle")


class _WriterLocked(sqlite3.Connection):
    """A SQLite connection that takes the database's writer lock for each transaction.

    Why: SQLite's busy handler, with which a writer waits for another (process or thread),
    sleeps 1, 2, 5, 10, … 100 ms between tries; with several web processes and a worker writing
    small transactions, most of a webhook's time went to those sleeps. Here the threads of one
    process queue on a threading lock (woken at once, holding no GIL while they wait), and one
    thread per process at a time tries a lock file's flock, again within at most
    `WRITER_LOCK_POLL_MAX` of the holder's commit. flock locks belong to an open file, so each
    connection opens the file for itself.
    """

    lock_path: str = ""
    _lock_file: int | None = None
    _held: threading.Lock | None = None

    def take_writer_lock(self) -> None:
        """Wait (up to the busy timeout) for the writer lock; SQLite's "locked" error after."""
        if self._held is not None:
            return
        deadline = time.monotonic() + WRITER_LOCK_TIMEOUT
        in_process = _process_lock(self.lock_path)
        if not in_process.acquire(timeout=WRITER_LOCK_TIMEOUT):
            raise sqlite3.OperationalError("database is locked")
        try:
            self._take_file_lock(deadline)
        except BaseException:
            in_process.release()
            raise
        self._held = in_process

    def _take_file_lock(self, deadline: float) -> None:
        if self._lock_file is None:
            self._lock_file = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        pause = WRITER_LOCK_POLL_MIN
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, WRITER_LOCK_POLL_MAX)
                continue
            return

    def give_writer_lock(self) -> None:
        """Let the next writer in (a no-op when not held)."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            held.release()

    def commit(self) -> None:
        """Commit, then let the next writer in."""
        try:
            super().commit()
        finally:
            self.give_writer_lock()

    def rollback(self) -> None:
        """Roll back, then let the next writer in."""
        try:
            super().rollback()
        finally:
            self.give_writer_lock()

    def close(self) -> None:
        """Close the database and the lock file."""
        try:
            super().close()
        finally:
            self.give_writer_lock()
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None


#: Per lock file, the lock the threads of this process queue on.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    """This process's lock for the lock file at `path`."""
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(path, threading.Lock())


def _forget_process_locks() -> None:
    # A forked child has none of its parent's threads: a lock one of them held must not stay
    # held in the child for ever.
    global _PROCESS_LOCKS_GUARD
    _PROCESS_LOCKS.clear()
    _PROCESS_LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_process_locks)


#: How long a writer waits for the writer lock: SQLite's busy timeout, set on every connection.
WRITER_LOCK_TIMEOUT = 30.0
WRITER_LOCK_POLL_MIN = 0.00005
WRITER_LOCK_POLL_MAX = 0.001


def _writer_locked(database: str) -> type[_WriterLocked]:
    """The connection class for the database file `database`: its lock file is beside it."""
    return type("WriterLocked", (_WriterLocked,), {"lock_path": f"{database}.writer-lock"})


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (the API reads them after writing)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at connector/persistence/migrations and `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Migrate the database at `url` to the newest schema (a quick look first: every start of
    every process calls this, and running Alembic's environment costs a tenth of a second)."""
    from alembic import command

    if current_revision(url) != head_revision():
        command.upgrade(alembic_config(url), "head")


@cache
def head_revision() -> str | None:
    """The newest migration's revision (the migrations ship with the code: read them once)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at; None when it has never been migrated."""
    from alembic.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def insert_for(dialect: str, model: Any) -> Any:
    """An INSERT into `model` for the `dialect` ("postgresql" or "sqlite") that can ON CONFLICT."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
