"""The event store: one port (`EventStore`), adapters chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from cortex.kernel.errors import Invalid
from cortex.kernel.settings import redact_url
from cortex.kernel.store.port import AlreadyApplied, Claim, ConcurrencyError, EventStore, NewEvent

__all__ = ["AlreadyApplied", "Claim", "ConcurrencyError", "EventStore", "NewEvent", "open_store"]


async def open_store(url: str, service: str, *, sqlite_synchronous: str = "FULL") -> EventStore:
    """Open the event store of `service` at `url`.

    `sqlite:///dir` keeps `<dir>/<service>.db`; `sqlite:///file.db` uses that one file.
    `arangodb://user:pw@host:8529/db` (or `arangodbs://` for TLS) uses collections
    `<service>_events` and `<service>_meta` in database `db`.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from cortex.kernel.store.sqlite import SQLiteEventStore

        # As in SQLAlchemy: `sqlite:///rel/path` is relative, `sqlite:////abs/path` absolute.
        path = Path(unquote(urlsplit(url).path)[1:])
        if path.suffix != ".db":
            path = path / f"{service}.db"
        return await SQLiteEventStore.open(path, sqlite_synchronous)
    if scheme in ("arangodb", "arangodbs"):
        from cortex.kernel.store.arangodb import ArangoEventStore

        return await ArangoEventStore.open(url, service)
    raise Invalid.field(
        "store", f"unknown event store {redact_url(url)!r}: use sqlite:/// or arangodb://"
    )
