"""The sandbox's records: in memory, optionally written through to a SQLite file."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.sandbox.seed import seed_billing_codes, seed_companies

ENTITIES = ("Tickets", "TicketNotes", "Companies", "BillingCodes")

#: First ids handed out, in the range real tenants use.
FIRST_IDS = {
    "Tickets": 128_926,
    "TicketNotes": 30_777_658,
    "Companies": 29_683_500,
    "BillingCodes": 29_682_900,
}

#: The read-only entities every state holds from its start: REST entity → its seeded records.
SEEDED = {"Companies": seed_companies, "BillingCodes": seed_billing_codes}


class SandboxState:
    """Thread-safe records keyed by REST entity and id, with id sequences.

    With `path`, every change is written to a SQLite file and the records are reloaded from it at
    start, so a standalone sandbox keeps its tickets across restarts.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self._records: dict[str, dict[int, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self._next_ids: dict[str, int] = dict(FIRST_IDS)
        self._db: sqlite3.Connection | None = None
        if path:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records"
                " (entity TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL,"
                " PRIMARY KEY (entity, id))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sequences (entity TEXT PRIMARY KEY, next_id INTEGER)"
            )
            self._load()
        if not self._records["Companies"]:
            self.reset()
        else:
            # A state file written before an entity was seeded gets it now; its tickets stay.
            with self._transaction() as db:
                for entity, seed in SEEDED.items():
                    if not self._records[entity]:
                        for record in seed():
                            self._write(db, entity, record)

    def _load(self) -> None:
        if self._db is None:
            return
        for entity, record_id, body in self._db.execute("SELECT entity, id, body FROM records"):
            self._records.setdefault(entity, {})[record_id] = json.loads(body)
        for entity, next_id in self._db.execute("SELECT entity, next_id FROM sequences"):
            self._next_ids[entity] = next_id

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection | None]:
        with self.lock:
            if self._db is None:
                yield None
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        """Forget every ticket and note and restore the seeded companies and billing codes."""
        with self._transaction() as db:
            self._records = {e: {} for e in ENTITIES}
            self._next_ids = dict(FIRST_IDS)
            if db is not None:
                db.execute("DELETE FROM records")
                db.execute("DELETE FROM sequences")
            for entity, seed in SEEDED.items():
                for record in seed():
                    self._write(db, entity, record)

    def _write(self, db: sqlite3.Connection | None, entity: str, record: dict[str, Any]) -> None:
        self._records[entity][record["id"]] = record
        if db is not None:
            db.execute(
                "INSERT OR REPLACE INTO records (entity, id, body) VALUES (?, ?, ?)",
                (entity, record["id"], json.dumps(record)),
            )

    def insert(self, entity: str, record: dict[str, Any]) -> int:
        """Store a new record under the entity's next id and return that id."""
        with self._transaction() as db:
            new_id = self._next_ids[entity]
            self._next_ids[entity] = new_id + 1
            stored = copy.deepcopy(record)
            stored["id"] = new_id
            self._write(db, entity, stored)
            if db is not None:
                db.execute(
                    "INSERT OR REPLACE INTO sequences (entity, next_id) VALUES (?, ?)",
                    (entity, new_id + 1),
                )
            return new_id

    def replace(self, entity: str, record: dict[str, Any]) -> None:
        """Overwrite an existing record (same id)."""
        with self._transaction() as db:
            self._write(db, entity, copy.deepcopy(record))

    def delete(self, entity: str, record_id: int) -> None:
        """Forget one record (nothing when it is not there)."""
        with self._transaction() as db:
            self._records[entity].pop(record_id, None)
            if db is not None:
                db.execute("DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id))

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        """Return a copy of one record, or None."""
        with self.lock:
            record = self._records[entity].get(record_id)
            return copy.deepcopy(record) if record is not None else None

    def all(self, entity: str) -> list[dict[str, Any]]:
        """Return copies of every record of the entity, ordered by id."""
        with self.lock:
            return [copy.deepcopy(self._records[entity][k]) for k in sorted(self._records[entity])]

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None
