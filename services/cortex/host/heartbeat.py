"""The host's heartbeat: itself and every replica, batched, every interval and on change."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import datetime

import msgspec
from nats.aio.client import Client as NATS

from cortex.contracts.registry import Heartbeat, ReplicaReport
from cortex.contracts.subjects import Subjects
from cortex.kernel.ids import utcnow
from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import cancel_and_wait, wait_event

from .usage import CpuMeter, rss_bytes

log = get_logger()

CHUNK = 1000
"""Replicas per heartbeat message: 10,000 replicas stay well under NATS's 1 MB default."""
STOPPED_REPEATS = 3
"""Beats that repeat a stopped replica, so one lost beat does not leave it registered."""
DEBOUNCE = 0.2


class HeartbeatSender:
    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        *,
        host_id: str,
        boot_id: str,
        interval: float,
        capacity: int,
        replicas: Callable[[], list[ReplicaReport]],
    ) -> None:
        self._nc = nc
        self._subject = subjects.heartbeat(host_id)
        self._host_id = host_id
        self._boot_id = boot_id
        self._interval = interval
        self._capacity = capacity
        self._replicas = replicas
        self._started_at: datetime = utcnow()
        self._cpu = CpuMeter()
        self._stopped: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    def wake(self) -> None:
        """Something changed: beat soon rather than at the next interval."""
        self._wake.set()

    def stopped(self, instance_id: str) -> None:
        self._stopped[instance_id] = STOPPED_REPEATS

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait(self._task)

    async def beat(self) -> None:
        reports = self._replicas()
        stopped = list(self._stopped)
        for instance_id in stopped:
            self._stopped[instance_id] -= 1
            if self._stopped[instance_id] <= 0:
                del self._stopped[instance_id]
        chunks = [reports[i : i + CHUNK] for i in range(0, len(reports), CHUNK)] or [[]]
        now, cpu, rss = utcnow(), self._cpu.read(), rss_bytes()
        for index, chunk in enumerate(chunks):
            beat = Heartbeat(
                host_id=self._host_id,
                boot_id=self._boot_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=self._started_at,
                sent_at=now,
                interval=self._interval,
                cpu_percent=cpu,
                rss_bytes=rss,
                capacity=self._capacity,
                replica_count=len(reports),
                replicas=chunk,
                stopped=stopped if index == 0 else [],
                chunk=index,
                chunks=len(chunks),
            )
            await self._nc.publish(self._subject, msgspec.json.encode(beat))

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # NATS away: the next beat will tell the truth
                log.debug("heartbeat not sent", error=str(exc))
            if await wait_event(self._wake, self._interval):
                await asyncio.sleep(DEBOUNCE)
            self._wake.clear()
