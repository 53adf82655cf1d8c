"""The health clock: every heartbeat interval, silence turns hosts and instances unhealthy,
then gone, then deregistered (see `HealthPolicy`). It ticks on the registry replica that holds
the lease `registry.health`, the one that decides on heartbeats too."""

from __future__ import annotations

import asyncio
import time
from functools import partial

from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import wait_event
from cortex.registry.domain import HealthPolicy, HostEvent, HostState, on_clock
from cortex.registry.live import LiveData
from cortex.registry.metrics import count_health, forget_health
from cortex.registry.projections import HostsProjection
from cortex.registry.writer import HostWriter

log = get_logger()


class HealthClock:
    def __init__(
        self,
        projection: HostsProjection,
        live: LiveData,
        writer: HostWriter,
        policy: HealthPolicy,
    ) -> None:
        self._projection = projection
        self._live = live
        self._writer = writer
        self.policy = policy
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        count_health(self._projection.hosts())
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="registry-health-clock")

    async def stop(self) -> None:
        """Stop ticking; a tick under way finishes first."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        forget_health()

    async def tick(self) -> None:
        now = time.monotonic()
        live = self._live
        for host_id, state in list(self._projection.hosts().items()):
            seen = live.host_seen(host_id, now)
            # Deciding without the lock first keeps a quiet tick (the usual one) lock-free;
            # the writer decides again under the lock, with whatever arrived meanwhile.
            if not on_clock(state, seen, live.instance_seen, now, self.policy):
                continue
            try:
                await self._writer.write(host_id, partial(self._decide, host_id))
            except Exception:
                log.exception("health clock could not record a change", host_id=host_id)
        live.prune(
            self._projection.instance_ids(), older_than=now - self.policy.deregister_instance_s
        )
        count_health(self._projection.hosts())

    def _decide(self, host_id: str, state: HostState | None) -> list[HostEvent]:
        if state is None:
            return []
        now = time.monotonic()
        seen = self._live.host_seen(host_id, now)
        return on_clock(state, seen, self._live.instance_seen, now, self.policy)

    async def _run(self) -> None:
        while not self._stop.is_set():
            if await wait_event(self._stop, self.policy.interval):
                return
            try:
                await self.tick()
            except Exception:
                log.exception("health clock tick failed")
