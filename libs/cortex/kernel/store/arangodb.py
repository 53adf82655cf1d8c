"""ArangoDB adapter: the production event store (python-arango).

One database (the URL's path), two collections per service: `<service>_events` and
`<service>_meta`. A unique persistent index on (stream_id, version) refuses a second event at a
version; a unique index on `position` does the same for the commit order. An append is one
stream transaction that holds the meta collection exclusively: it reads the stream's version
and the position counter, inserts the events and moves the counter, so positions are handed out
in commit order and `read_all` never sees a gap fill in later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote

import msgspec
from arango import ArangoClient  # type: ignore[attr-defined]
from arango.exceptions import ArangoError, ArangoServerError
from arango.http import DefaultHTTPClient

from cortex.contracts.events import EventEnvelope
from cortex.kernel.errors import CortexError, Invalid, Unavailable
from cortex.kernel.settings import redact_url
from cortex.kernel.store.port import (
    AlreadyApplied,
    Claim,
    ConcurrencyError,
    NewEvent,
    check_append,
)
from cortex.kernel.store.schema import StoreTooNew

T = TypeVar("T")

UNIQUE_CONSTRAINT_VIOLATED = 1210
_POSITION_KEY = "_position"
_SCHEMA_KEY = "_schema"
SCHEMA_VERSION = 1
"""1: the events and meta collections, the (stream_id, version) and position indexes."""

WRITERS = 4
"""Threads (and HTTP connections) for appends, claims and meta writes."""
READERS = 8
"""Threads (and HTTP connections) for reads: apart from the writers, never behind a lock."""
LOCK_TIMEOUT = 10
"""Seconds an append waits for the meta collection's lock before it fails (retried by its
caller). Well under REQUEST_TIMEOUT: the server gives up waiting before the client gives up on
the request, so a client never leaves behind a transaction that goes on to take the lock."""
REQUEST_TIMEOUT = 60
MAX_KEY = 254
"""Bytes of an ArangoDB document key."""


_URL = re.compile(
    r"^(?P<scheme>arangodbs?)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<hosts>[^/?#]*)(?P<path>/[^?#]*)?$"
)
_HOST = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9_.-]+))(?::(?P<port>[0-9]{1,5}))?$"
)


@dataclass(frozen=True)
class ArangoTarget:
    hosts: list[str]
    """`http(s)://host:port` of each coordinator, in the order given."""
    username: str
    password: str
    database: str


def arango_target(url: str) -> ArangoTarget:
    """`arangodb://user:password@host1:8529,[2001:db8::1]:8529/<database>` (`arangodbs://`
    for TLS): one or more coordinators, IPv6 addresses in brackets, port 8529 by default."""
    found = _URL.match(url)
    if not found:
        raise Invalid.field("store", f"not an ArangoDB URL: {redact_url(url)}")
    database = (found["path"] or "").strip("/")
    if not database:
        raise Invalid.field("store", "an ArangoDB URL names its database: .../<database>")
    scheme = "https" if found["scheme"] == "arangodbs" else "http"
    hosts = []
    for given in found["hosts"].split(","):
        host = _HOST.match(given.strip())
        port = int(host["port"]) if host and host["port"] else 8529
        if host is None or not 0 < port < 65536:
            raise Invalid.field(
                "store",
                f"{given.strip()!r} is not host[:port] (an IPv6 address goes in brackets: "
                f"[2001:db8::1]:8529) in {redact_url(url)}",
            )
        address = f"[{host['v6']}]" if host["v6"] else host["name"]
        hosts.append(f"{scheme}://{address}:{port}")
    return ArangoTarget(
        hosts=hosts,
        username=unquote(found["user"] or "root"),
        password=unquote(found["password"] or ""),
        database=database,
    )


class ArangoEventStore:
    kind = "arangodb"
    schema_version = SCHEMA_VERSION

    def __init__(self, url: str, service: str) -> None:
        target = arango_target(url)
        self._username = target.username
        self._password = target.password
        self._database = target.database
        self._events = f"{service}_events"
        self._meta = f"{service}_meta"
        self.location = f"{redact_url(url)}#{self._events}"
        # With several coordinators, the first that answers is used and the next takes over
        # when it fails ("fallback"): a stream transaction lives on the coordinator that began
        # it, so requests must not be spread over them. One HTTP connection per worker thread,
        # no more: the pool is bounded by the threads that use it.
        self._client = ArangoClient(
            hosts=target.hosts,
            http_client=DefaultHTTPClient(
                request_timeout=REQUEST_TIMEOUT,
                pool_maxsize=WRITERS + READERS,
                pool_connections=len(target.hosts),
            ),
        )
        self._db: Any = None
        self.migrated_from = SCHEMA_VERSION
        # Appends wait on the meta collection's lock; reads never do. Apart, a few blocked
        # appends cannot take every thread the reads need.
        self._writes = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="arango-write")
        self._reads = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="arango-read")

    @classmethod
    async def open(cls, url: str, service: str) -> ArangoEventStore:
        store = cls(url, service)
        await store._run(store._setup)
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
        return await self._run(
            lambda: self._append(stream_id, events, expected_version, claim), self._writes
        )

    async def claim(self, claim: Claim) -> None:
        def write() -> None:
            txn = self._begin()
            try:
                _take(txn.collection(self._meta), claim)
                txn.commit_transaction()
            except BaseException:
                _abort(txn)
                raise

        await self._run(write, self._writes)

    async def read(self, stream_id: str, from_version: int = 1) -> list[EventEnvelope]:
        return await self._run(
            lambda: self._query(
                "FOR e IN @@c FILTER e.stream_id == @s AND e.version >= @v SORT e.version RETURN e",
                {"@c": self._events, "s": stream_id, "v": from_version},
            )
        )

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        return await self._run(
            lambda: self._query(
                "FOR e IN @@c FILTER e.position > @p SORT e.position LIMIT @l RETURN e",
                {"@c": self._events, "p": after_position, "l": limit},
            )
        )

    async def last_position(self) -> int:
        def query() -> int:
            doc = self._db.collection(self._meta).get(_POSITION_KEY)
            return int(doc["value"]) if doc else 0

        return await self._run(query)

    async def get_meta(self, key: str) -> bytes | None:
        def query() -> bytes | None:
            doc = self._db.collection(self._meta).get(_meta_key(key))
            return bytes.fromhex(doc["value"]) if doc else None

        return await self._run(query)

    async def put_meta(self, key: str, value: bytes) -> None:
        await self._run(
            lambda: self._db.collection(self._meta).insert(
                {"_key": _meta_key(key), "value": value.hex()}, overwrite=True, silent=True
            ),
            self._writes,
        )

    async def delete_meta(self, key: str) -> None:
        await self._run(
            lambda: self._db.collection(self._meta).delete(
                _meta_key(key), ignore_missing=True, silent=True
            ),
            self._writes,
        )

    async def close(self) -> None:
        await self._run(self._client.close)
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)

    # --- on worker threads ---------------------------------------------------------------

    async def _run(self, fn: Callable[[], T], pool: ThreadPoolExecutor | None = None) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool or self._reads, fn)
        except CortexError:
            raise
        except (ArangoError, OSError) as exc:
            raise Unavailable(f"event store {self.location}: {exc}") from exc

    def _setup(self) -> None:
        """Migration 1 (the collections and indexes) where the store lacks it, then the
        version recorded. Each step is idempotent, so replicas starting together are safe."""
        system = self._client.db("_system", username=self._username, password=self._password)
        try:
            if not system.has_database(self._database):
                system.create_database(self._database)
        except ArangoServerError:
            pass  # a user without rights on _system: the database must exist already
        db = self._client.db(self._database, username=self._username, password=self._password)
        for name in (self._events, self._meta):
            if not db.has_collection(name):
                try:
                    db.create_collection(name)
                except ArangoServerError as exc:
                    if not db.has_collection(name):  # another replica won the race
                        raise Unavailable(f"cannot create collection {name}: {exc}") from exc
        events = db.collection(self._events)
        events.add_index(
            {
                "type": "persistent",
                "fields": ["stream_id", "version"],
                "unique": True,
                "name": "stream_version",
            }
        )
        events.add_index(
            {"type": "persistent", "fields": ["position"], "unique": True, "name": "position"}
        )
        meta: Any = db.collection(self._meta)
        recorded = meta.get(_SCHEMA_KEY)
        found = int(recorded["value"]) if recorded else 0
        if found > SCHEMA_VERSION:
            raise StoreTooNew(self.location, found, SCHEMA_VERSION)
        if found < SCHEMA_VERSION:
            meta.insert({"_key": _SCHEMA_KEY, "value": SCHEMA_VERSION}, overwrite=True, silent=True)
        self.migrated_from = found
        self._db = db

    def _begin(self) -> Any:
        return self._db.begin_transaction(
            read=[self._events],
            write=[self._events],
            exclusive=[self._meta],
            sync=True,
            lock_timeout=LOCK_TIMEOUT,
        )

    def _append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        claim: Claim | None,
    ) -> int:
        txn = self._begin()
        current = 0
        try:
            meta = txn.collection(self._meta)
            if claim is not None:
                _take(meta, claim)
            cursor = txn.aql.execute(
                "FOR e IN @@c FILTER e.stream_id == @s SORT e.version DESC LIMIT 1 "
                "RETURN e.version",
                bind_vars={"@c": self._events, "s": stream_id},
            )
            current = next(iter(cursor), 0)
            if expected_version is not None and current != expected_version:
                raise ConcurrencyError(stream_id, expected_version, current)
            counter = meta.get(_POSITION_KEY)
            position = int(counter["value"]) if counter else 0
            txn.collection(self._events).insert_many(
                [
                    {
                        "_key": e.event_id,
                        "event_id": e.event_id,
                        "stream_id": stream_id,
                        "stream_type": e.stream_type,
                        "version": current + i,
                        "position": position + i,
                        "type": e.type,
                        "data": msgspec.json.decode(e.data),
                        "occurred_at": e.occurred_at.isoformat(),
                        "correlation_id": e.correlation_id,
                        "causation_id": e.causation_id,
                        "actor": e.actor,
                        "schema_version": e.schema_version,
                    }
                    for i, e in enumerate(events, start=1)
                ],
                raise_on_document_error=True,
            )
            meta.insert(
                {"_key": _POSITION_KEY, "value": position + len(events)},
                overwrite=True,
                silent=True,
            )
            txn.commit_transaction()
        except ArangoServerError as exc:
            _abort(txn)
            if exc.error_code == UNIQUE_CONSTRAINT_VIOLATED:
                raise ConcurrencyError(stream_id, expected_version or 0, current) from exc
            raise
        except BaseException:
            _abort(txn)
            raise
        return current + len(events)

    def _query(self, aql: str, bind_vars: dict[str, Any]) -> list[EventEnvelope]:
        return [
            _envelope(doc)
            for doc in self._db.aql.execute(aql, bind_vars=bind_vars, batch_size=1000)
        ]


def _envelope(doc: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        position=doc["position"],
        event_id=doc["event_id"],
        stream_id=doc["stream_id"],
        stream_type=doc["stream_type"],
        version=doc["version"],
        type=doc["type"],
        data=msgspec.Raw(msgspec.json.encode(doc["data"])),
        occurred_at=datetime.fromisoformat(doc["occurred_at"]),
        correlation_id=doc.get("correlation_id"),
        causation_id=doc.get("causation_id"),
        actor=doc.get("actor"),
        schema_version=doc.get("schema_version", 1),
    )


def _take(meta: Any, claim: Claim) -> None:
    """Write the claim's record in the caller's transaction (which holds the meta collection
    exclusively), or raise AlreadyApplied."""
    doc = meta.get(_meta_key(claim.key))
    if doc is not None and bytes.fromhex(doc["value"]) != claim.replaces:
        raise AlreadyApplied(claim.key)
    meta.insert(
        {"_key": _meta_key(claim.key), "value": claim.value.hex()}, overwrite=True, silent=True
    )


def _meta_key(key: str) -> str:
    """A document key for a meta key. Keys allow a restricted alphabet; hex keeps any key valid
    and apart from the position counter's. One whose hex would pass ArangoDB's 254 bytes (a key
    of more than 126 bytes) is its SHA-256 instead: `h` and 64 hex digits."""
    hexed = "k" + key.encode().hex()
    if len(hexed) <= MAX_KEY:
        return hexed
    return "h" + hashlib.sha256(key.encode()).hexdigest()


def _abort(txn: Any) -> None:
    # Already aborted by the server, perhaps; the original error is what matters.
    with contextlib.suppress(ArangoError):
        txn.abort_transaction()
