"""The event store port: what every service needs from wherever its events live.

Two adapters implement it (`sqlite`, `arangodb`) and one contract test suite
(`tests/integration/test_event_store_contract.py`) runs against each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.errors import Conflict, Invalid
from cortex.kernel.ids import new_id, utcnow


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended; the store assigns `version` and `position`."""

    type: str
    stream_type: str
    data: bytes
    """The event's own Struct, JSON-encoded."""
    event_id: str = msgspec.field(default_factory=new_id)
    occurred_at: datetime = msgspec.field(default_factory=utcnow)
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    schema_version: int = 1


class ConcurrencyError(Conflict):
    """Another writer appended to the stream first; re-read it and decide again."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not {expected}",
            details={
                "stream_id": stream_id,
                "expected_version": expected,
                "current_version": actual,
            },
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class Claim(msgspec.Struct, frozen=True):
    """A meta record written only where its key is free: what lets one replica, and only one,
    run a command. Given to `append`, it is written in the events' transaction."""

    key: str
    value: bytes
    replaces: bytes | None = None
    """A value the key may hold and still count as free: an expired record being replaced."""


class AlreadyApplied(Conflict):
    """The claim's key is taken: another writer got there first. Nothing was written."""

    def __init__(self, key: str) -> None:
        super().__init__(f"meta key {key!r} is already claimed", details={"key": key})
        self.key = key


class EventStore(Protocol):
    """Append-only streams of events plus a small key/value area for checkpoints and snapshots.

    Every method is safe to call concurrently from one event loop; the SQLite adapter is also
    safe with several processes on one file, the ArangoDB one with several replicas on one
    database.
    """

    kind: str
    """`sqlite` or `arangodb`."""
    location: str
    """Where the events live, without credentials."""
    schema_version: int
    """The version of its tables or collections this adapter makes and understands."""
    migrated_from: int
    """The version of its tables or collections the store had when this process opened it;
    opening applied the adapter's migrations after it (`cortex.kernel.store.schema`)."""

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        claim: Claim | None = None,
    ) -> int:
        """Append atomically (all or nothing) and return the stream's new version.

        `expected_version` is the version the writer decided on (0: the stream must not exist
        yet); `None` skips the check. A mismatch raises `ConcurrencyError` and writes nothing.
        A `claim` is written with the events; where its key is taken, `AlreadyApplied` is
        raised first (before any version check) and nothing is written.
        """
        ...

    async def claim(self, claim: Claim) -> None:
        """Write `claim` alone, by the rule `append` applies to it."""
        ...

    async def read(self, stream_id: str, from_version: int = 1) -> list[EventEnvelope]:
        """The stream's events from `from_version` on, oldest first; `[]` for an unknown one."""
        ...

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Events of every stream in commit order, after `after_position` (resumable cursor).

        An event is never visible before an event with a lower position, so a reader that
        resumes from the last position it saw misses nothing.
        """
        ...

    async def last_position(self) -> int: ...

    async def get_meta(self, key: str) -> bytes | None: ...

    async def put_meta(self, key: str, value: bytes) -> None: ...

    async def delete_meta(self, key: str) -> None: ...

    async def close(self) -> None: ...


def check_append(stream_id: str, events: Sequence[NewEvent], expected_version: int | None) -> None:
    """Argument checks every adapter makes before touching storage."""
    if not stream_id:
        raise Invalid.field("stream_id", "must not be empty")
    if not events:
        raise Invalid.field("events", "must hold at least one event")
    if expected_version is not None and expected_version < 0:
        raise Invalid.field("expected_version", "must be 0 or more")
