"""Read models fed by events, with a checkpoint, caught up at start and rebuildable.

A projection holds its read model in memory (queries are dictionary lookups) and is persisted as
a snapshot in the event store's meta area, stamped with the position it reflects and the
projection's `version`. At start the runner restores the snapshot and reads the events after it;
a snapshot of another `version` is thrown away and the model rebuilt from position 0, which is
why a change to a read model's shape never needs a data migration. `rebuild()` does the same on
demand and must give a read model identical to the one built incrementally.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.events import Quarantine, UndecodableEvent
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import SERVICES, gauge, histogram
from cortex.kernel.store.port import EventStore

log = get_logger()

POSITION = gauge(
    "cortex_projection_position",
    "Last event position applied",
    ["projection"],
    exported_by=SERVICES,
)
LAG = histogram(
    "cortex_projection_lag_seconds",
    "From an event's append to its application in this process's read models; trigger "
    "`append` for the appending replica's own catch-up, `follow` for events another replica "
    "appended (prompted, or found by the periodic catch-up)",
    ["trigger"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    exported_by=SERVICES,
)
LAG_EVENTS = gauge(
    "cortex_projection_lag_events",
    "Events in the store that the projection has not applied: the store's last position "
    "minus the projection's, as of its latest catch-up (0 once caught up; growing while an "
    "event it cannot apply holds it up)",
    ["projection"],
    exported_by=SERVICES,
)

S = TypeVar("S", bound=msgspec.Struct)


class Projection(Protocol):
    name: str
    version: int
    """Bump when the read model's shape or meaning changes: old snapshots are then rebuilt."""

    def apply(self, event: EventEnvelope) -> None:
        """Fold one event in. Must be deterministic, must ignore event types it does not know,
        and must decode the event (`EventCodec.decode`) before it changes anything: an event
        that does not decode is then skipped whole, and quarantined by the runner."""
        ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...

    def reset(self) -> None: ...


class StructProjection(Generic[S]):
    """A projection whose whole read model is one msgspec Struct, snapshotted as MessagePack."""

    name: str
    version: int = 1
    model_type: type[S]

    def __init__(self) -> None:
        self.model: S = self.model_type()

    def apply(self, event: EventEnvelope) -> None:
        raise NotImplementedError

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.model)

    def restore(self, data: bytes) -> None:
        self.model = msgspec.msgpack.decode(data, type=self.model_type)

    def reset(self) -> None:
        self.model = self.model_type()


class _Snapshot(msgspec.Struct, frozen=True):
    version: int
    position: int
    data: bytes


class ProjectionRunner:
    """Keeps a set of projections caught up with one event store."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        snapshot_every: int = 5000,
        quarantine: Quarantine | None = None,
    ) -> None:
        self._store = store
        self._quarantine = quarantine or Quarantine("")
        self._projections = list(projections)
        self._positions = {p.name: 0 for p in self._projections}
        self._batch_size = batch_size
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._lock = asyncio.Lock()
        self.caught_up = False

    @property
    def position(self) -> int:
        return min(self._positions.values(), default=0)

    async def start(self) -> None:
        for projection in self._projections:
            raw = await self._store.get_meta(_key(projection))
            if raw is None:
                continue
            snap = msgspec.msgpack.decode(raw, type=_Snapshot)
            if snap.version != projection.version:
                log.info(
                    "projection changed shape; rebuilding",
                    projection=projection.name,
                    snapshot_version=snap.version,
                    version=projection.version,
                )
                continue
            projection.restore(snap.data)
            self._positions[projection.name] = snap.position
        await self.catch_up(None)
        self.caught_up = True

    async def catch_up(self, trigger: str | None = "follow") -> int:
        """Apply every event not yet applied; returns the position reached. `trigger` says
        why, for the lag metric: `append` (this process's own write), `follow`, or None (a
        start or a rebuild, whose old events say nothing about lag)."""
        async with self._lock:
            end = 0
            while True:
                start = self.position
                batch = await self._store.read_all(start, self._batch_size)
                if not batch:
                    self._lagging(end)
                    break
                if len(batch) == self._batch_size and not end:
                    # More than a batch behind (a start, a burst): how far is worth one query.
                    end = await self._store.last_position()
                try:
                    for projection in self._projections:
                        self._apply(projection, batch)
                except Exception:
                    with contextlib.suppress(Exception):  # the store's failure is not the news
                        self._lagging(await self._store.last_position())
                    raise
                self._lagging(max(end, batch[-1].position))
                self._since_snapshot += len(batch)
                if trigger is not None:
                    now = datetime.now(UTC)
                    lag = LAG.labels(trigger)
                    for event in batch:
                        lag.observe(max(0.0, (now - event.occurred_at).total_seconds()))
            if self._since_snapshot >= self._snapshot_every:
                await self._save()
            return self.position

    def _apply(self, projection: Projection, batch: Sequence[EventEnvelope]) -> None:
        """Fold in the batch's events the projection has not seen, moving its position past
        each one: an `apply` that fails stops it at that event, and the retry starts there,
        so no event of the batch is applied twice. An event that does not decode is
        quarantined and passed over."""
        position = self._positions[projection.name]
        try:
            for event in batch:
                if event.position <= position:
                    continue
                try:
                    projection.apply(event)
                except UndecodableEvent as exc:
                    self._quarantine.add(exc, f"projection {projection.name}")
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    # A projection that decodes the JSON itself rather than through a codec.
                    self._quarantine.add(
                        UndecodableEvent(event, str(exc)), f"projection {projection.name}"
                    )
                position = event.position
        finally:
            self._positions[projection.name] = position
            POSITION.labels(projection.name).set(position)

    def _lagging(self, end: int) -> None:
        """How far each projection is behind `end`, the last position the store is known to
        hold (never below what a projection applied: 0 once it read the log to its end)."""
        for name, position in self._positions.items():
            LAG_EVENTS.labels(name).set(max(0, end - position))

    async def save(self) -> None:
        """Persist every projection's snapshot (at stop, and every `snapshot_every` events)."""
        async with self._lock:
            await self._save()

    async def rebuild(self) -> int:
        """Drop every read model and replay from position 0; returns the position reached."""
        async with self._lock:
            for projection in self._projections:
                projection.reset()
                self._positions[projection.name] = 0
                await self._store.delete_meta(_key(projection))
        position = await self.catch_up(None)
        await self.save()
        return position

    async def _save(self) -> None:
        for projection in self._projections:
            snap = _Snapshot(
                projection.version, self._positions[projection.name], projection.snapshot()
            )
            await self._store.put_meta(_key(projection), msgspec.msgpack.encode(snap))
        self._since_snapshot = 0


def _key(projection: Projection) -> str:
    return f"projection:{projection.name}"
