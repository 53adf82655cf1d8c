"""SQLite adapter: the embedded default. One file per service, WAL, safe across processes.

Appends take SQLite's write lock up front (`BEGIN IMMEDIATE`), so the version check and the
inserts are one critical section across every process that opens the file, and positions
(`INTEGER PRIMARY KEY AUTOINCREMENT`) are handed out in commit order: `read_all` never sees a
gap that fills in later. The meta table is in the same file, so a claim (an idempotency
record) is written in the append's own transaction. All calls for one store run on one worker
thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.errors import Unavailable
from cortex.kernel.store.port import (
    AlreadyApplied,
    Claim,
    ConcurrencyError,
    NewEvent,
    check_append,
)
from cortex.kernel.store.schema import StoreTooNew

BUSY_TIMEOUT = 30.0
"""Seconds a write waits for another process's write to end."""

T = TypeVar("T")

# Migration n brings a store from version n - 1 to n; the version is SQLite's `user_version`.
# A file from before versions were recorded (0, its tables there) is what migration 1 makes, so
# its `IF NOT EXISTS` statements leave it as it is and record 1.
_MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    stream_id      TEXT NOT NULL,
    stream_type    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT NOT NULL,
    data           TEXT NOT NULL,
    occurred_at    TEXT NOT NULL,
    correlation_id TEXT,
    causation_id   TEXT,
    actor          TEXT,
    schema_version INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
""",
}
SCHEMA_VERSION = max(_MIGRATIONS)

_COLUMNS = (
    "position, event_id, stream_id, stream_type, version, type, data, occurred_at, "
    "correlation_id, causation_id, actor, schema_version"
)

Row = tuple[int, str, str, str, int, str, str, str, str | None, str | None, str | None, int]


def _envelope(row: Row) -> EventEnvelope:
    return EventEnvelope(
        position=row[0],
        event_id=row[1],
        stream_id=row[2],
        stream_type=row[3],
        version=row[4],
        type=row[5],
        data=msgspec.Raw(row[6].encode()),
        occurred_at=datetime.fromisoformat(row[7]),
        correlation_id=row[8],
        causation_id=row[9],
        actor=row[10],
        schema_version=row[11],
    )


class SQLiteEventStore:
    kind = "sqlite"
    schema_version = SCHEMA_VERSION

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.location = f"sqlite:///{path}"
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None
        self.migrated_from = SCHEMA_VERSION
        """The schema version the file had when this store opened it."""

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> SQLiteEventStore:
        store = cls(path, synchronous)
        await store._run(store._connect)
        return store

    # --- the port ------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        claim: Claim | None = None,
    ) -> int:
        check_append(stream_id, events, expected_version)
        return await self._run(lambda: self._append(stream_id, events, expected_version, claim))

    async def claim(self, claim: Claim) -> None:
        def write() -> None:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                _take(db, claim)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(write)

    async def read(self, stream_id: str, from_version: int = 1) -> list[EventEnvelope]:
        return await self._run(
            lambda: self._select(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? "
                "ORDER BY version",
                (stream_id, from_version),
            )
        )

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        return await self._run(
            lambda: self._select(
                f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after_position, limit),
            )
        )

    async def last_position(self) -> int:
        def query() -> int:
            row = self._db().execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
            return int(row[0])

        return await self._run(query)

    async def get_meta(self, key: str) -> bytes | None:
        def query() -> bytes | None:
            row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._run(query)

    async def put_meta(self, key: str, value: bytes) -> None:
        await self._run(
            lambda: self._write(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    async def delete_meta(self, key: str) -> None:
        await self._run(lambda: self._write("DELETE FROM meta WHERE key = ?", (key,)))

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    # --- on the worker thread ------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"event store {self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable(f"event store {self.path} is closed")
        return self._conn

    def _connect(self) -> None:
        # A process that opens the file while another one switches it to WAL or creates the
        # schema is told "database is locked" at once, without the busy timeout's wait (SQLite
        # does not wait where waiting could deadlock): try again, as long as the timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = 0.005
        while True:
            try:
                self._conn = self._open()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if found > SCHEMA_VERSION:
                    raise StoreTooNew(self.location, found, SCHEMA_VERSION)
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in filter(str.strip, _MIGRATIONS[version].split(";")):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
                self.migrated_from = found
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        claim: Claim | None,
    ) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            if claim is not None:
                _take(db, claim)
            row = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = ?", (stream_id,)
            ).fetchone()
            current = int(row[0])
            if expected_version is not None and current != expected_version:
                raise ConcurrencyError(stream_id, expected_version, current)
            db.executemany(
                "INSERT INTO events (event_id, stream_id, stream_type, version, type, data, "
                "occurred_at, correlation_id, causation_id, actor, schema_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.event_id,
                        stream_id,
                        e.stream_type,
                        current + i,
                        e.type,
                        e.data.decode(),
                        e.occurred_at.isoformat(),
                        e.correlation_id,
                        e.causation_id,
                        e.actor,
                        e.schema_version,
                    )
                    for i, e in enumerate(events, start=1)
                ],
            )
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            # The write lock makes a (stream_id, version) clash impossible; what remains is an
            # event id appended twice, which is the same lost race seen from a retry.
            raise ConcurrencyError(stream_id, expected_version or 0, current) from exc
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return current + len(events)

    def _select(self, sql: str, args: tuple[object, ...]) -> list[EventEnvelope]:
        return [_envelope(row) for row in self._db().execute(sql, args)]

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        self._db().execute(sql, args)


def _take(db: sqlite3.Connection, claim: Claim) -> None:
    """Write the claim's record inside the caller's write transaction, or raise AlreadyApplied."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (claim.key,)).fetchone()
    if row is not None and bytes(row[0]) != claim.replaces:
        raise AlreadyApplied(claim.key)
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (claim.key, claim.value),
    )
