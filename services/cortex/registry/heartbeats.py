"""Taking heartbeats off core NATS: `cortex.hb.*`, every beat to every registry replica.

Every chunk updates the live data (last seen, CPU, memory, replica counters) on every replica,
so each answers queries with current figures and any of them can take over the health clock
knowing when each host was last heard from. Only the replica holding the lease
`registry.health` decides: against the in-memory read model, and only a chunk that changes
something (a new host or replica, a health change, a stop, a new boot) appends, as one batch.
Most chunks change nothing and never touch the event store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cortex.contracts.registry import Heartbeat
from cortex.contracts.subjects import Subjects
from cortex.kernel.logging import get_logger
from cortex.registry.domain import HostEvent, is_stale, on_heartbeat
from cortex.registry.live import LiveData
from cortex.registry.metrics import HEARTBEAT_DURATION, HEARTBEATS, HEARTBEATS_REFUSED
from cortex.registry.projections import HostsProjection
from cortex.registry.writer import HostWriter

log = get_logger()


class HeartbeatHandler:
    def __init__(
        self,
        projection: HostsProjection,
        live: LiveData,
        writer: HostWriter,
        deciding: Callable[[], bool] = lambda: True,
    ) -> None:
        self._projection = projection
        self._live = live
        self._writer = writer
        self._deciding = deciding
        self._decoder = msgspec.json.Decoder(Heartbeat)

    async def handle(self, subject: str, data: bytes) -> list[HostEvent]:
        """One heartbeat message; returns the events it appended."""
        started = time.perf_counter()
        HEARTBEATS.inc()
        try:
            beat = self._decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            HEARTBEATS_REFUSED.inc()
            log.warning("unreadable heartbeat dropped", subject=subject, error=str(exc))
            return []
        if subject.rpartition(".")[2] != beat.host_id:
            # The subject is what NATS permissions can pin to a host's credentials; a body
            # claiming another host is not believed.
            HEARTBEATS_REFUSED.inc()
            log.warning("heartbeat for another host dropped", subject=subject, host_id=beat.host_id)
            return []
        try:
            if is_stale(self._projection.host(beat.host_id), beat):
                return []
            self._live.heard(beat, time.monotonic())
            if not self._deciding():
                return []
            return await self._writer.write(beat.host_id, lambda state: on_heartbeat(state, beat))
        finally:
            HEARTBEAT_DURATION.observe(time.perf_counter() - started)


class HeartbeatSubscription:
    """Handles heartbeats one at a time, in arrival order, until stopped."""

    def __init__(self, handler: HeartbeatHandler) -> None:
        self._handler = handler
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, nc: NATS, subjects: Subjects) -> None:
        self._sub = await nc.subscribe(
            subjects.heartbeats(),
            # Chunks of a 10,000-replica host are ~200 KB each; leave room for bursts.
            pending_bytes_limit=256 * 1024 * 1024,
        )
        self._task = asyncio.create_task(self._run(self._sub), name="registry-heartbeats")

    async def stop(self) -> None:
        """Stop taking heartbeats; the one being handled finishes first."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:
                # The connection is closed or draining, so the message loop would never hear
                # that the subscription ended.
                log.debug("heartbeat unsubscribe failed", error=str(exc))
                if self._task is not None:
                    self._task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub: Subscription) -> None:
        async for msg in sub.messages:
            await self._one(msg)

    async def _one(self, msg: Msg) -> None:
        try:
            await self._handler.handle(msg.subject, msg.data)
        except Exception:
            # The next beat of the host decides again, so one failure loses nothing for good.
            log.exception("heartbeat not handled", subject=msg.subject)
