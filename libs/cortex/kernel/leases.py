"""Leases in a NATS KV bucket, and work that one replica of a service does at a time.

A lease is a key: a replica claims it with `create` (which fails while anyone holds it), renews
it well within the bucket's TTL with `update` at the revision it holds, and deletes it at that
revision when it lets go. A replica that dies stops renewing; the entry expires with the
bucket's TTL and another replica's next claim takes it. A renewal that fails means the lease
lapsed and somebody else may hold it now: the work it guarded must stop.

`Singleton` runs one piece of work (the relay, the reconciler, the registry's health clock)
on whichever replica holds its lease. Two replicas can overlap for at most a renewal period,
when a holder that was frozen for longer than the TTL finds out on its next renewal; every
such piece of work is safe to overlap for that long (appends are checked by stream version,
publishes deduplicated by event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import Awaitable, Callable

from nats.js.api import KeyValueConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from cortex.kernel.bus.streams import placing
from cortex.kernel.ids import new_id
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import EVERY_PROCESS, gauge
from cortex.kernel.waiting import cancel_and_wait, wait_event

log = get_logger()

HELD = gauge(
    "cortex_lease_held",
    "1 while this process holds the lease on a piece of work",
    ["work"],
    exported_by=f"{EVERY_PROCESS} that takes part in a lease",
)


def holder_name() -> str:
    """Who holds a lease, as the bucket shows it: host, process, and a random part so that a
    restarted process with the same pid is not taken for its predecessor."""
    return f"{socket.gethostname()}-{os.getpid()}-{new_id()[-8:]}"


class LeaseBucket:
    """The leases one process holds in one bucket; `open` it before anything else."""

    def __init__(self, holder: str) -> None:
        self._kv: KeyValue | None = None
        self._holder = holder.encode()
        self.held: dict[str, int] = {}
        """Key -> revision of our entry."""

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "the lease bucket is not open"
        return self._kv

    async def open(
        self,
        js: JetStreamContext,
        name: str,
        *,
        ttl: float,
        description: str,
        replicas: int = 1,
    ) -> None:
        """The bucket, created if missing (by whichever replica comes first); a bucket with
        another TTL or replica count gets these, as streams get the configuration of the latest
        start. Raises `StreamReplicasError` when the servers cannot hold `replicas` copies."""
        stream = f"KV_{name}"
        try:
            kv = await js.key_value(name)
            config = (await js.stream_info(stream)).config
            if config.max_age != ttl or (config.num_replicas or 1) != replicas:
                window = min(config.duplicate_window or ttl, ttl)  # may not exceed the age
                with placing(stream, replicas):
                    await js.update_stream(
                        dataclasses.replace(
                            config, max_age=ttl, duplicate_window=window, num_replicas=replicas
                        )
                    )
        except (NotFoundError, BucketNotFoundError):
            with placing(stream, replicas):
                kv = await js.create_key_value(
                    KeyValueConfig(
                        bucket=name,
                        history=1,
                        ttl=ttl,
                        description=description,
                        replicas=replicas,
                    )
                )
        self._kv = kv

    async def claim(self, key: str) -> bool:
        if key in self.held:
            return True
        try:
            self.held[key] = await self.kv.create(key, self._holder)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self, key: str) -> bool:
        """False: the lease lapsed and someone else holds it (or nobody, but we lost it)."""
        revision = self.held.get(key)
        if revision is None:
            return False
        try:
            self.held[key] = await self.kv.update(key, self._holder, revision)
        except KeyWrongLastSequenceError:
            del self.held[key]
            return False
        return True

    async def release(self, key: str) -> None:
        revision = self.held.pop(key, None)
        if revision is None:
            return
        # Only our own entry: if it lapsed and another replica claimed it, the delete at our
        # revision fails and leaves theirs alone.
        with contextlib.suppress(Exception):
            await self.kv.delete(key, last=revision)


Step = Callable[[], Awaitable[None]]


class Singleton:
    """`begin` when this replica takes the lease `name`, `end` when it loses or gives it up.

    Every replica runs one; each tries to claim every third of the TTL, the holder renews as
    often. `end` runs before the lease is released at a stop, so the next holder starts after
    this one has finished (a relay flushes its checkpoint first, for one)."""

    def __init__(
        self, leases: LeaseBucket, name: str, *, ttl: float, begin: Step, end: Step
    ) -> None:
        self._leases = leases
        self.name = name
        self._period = ttl / 3
        self._begin = begin
        self._end = end
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.held = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lease-{self.name}")

    async def stop(self) -> None:
        """Stop the work if it runs here, then let the lease go at once."""
        self._stop.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self._lose()
        await self._leases.release(self.name)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.held:
                    if not await self._leases.renew(self.name):
                        log.warning("lease lost; stopping its work", work=self.name)
                        await self._lose()
                elif await self._leases.claim(self.name):
                    log.info("lease taken; starting its work", work=self.name)
                    self.held = True
                    HELD.labels(self.name).set(1)
                    await self._begin()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # NATS away or slow: a holder that cannot renew must assume the lease lapses.
                log.warning("lease check failed", work=self.name, error=str(exc) or repr(exc))
                if self.held:
                    self._leases.held.pop(self.name, None)
                    await self._lose()
            await wait_event(self._stop, self._period)

    async def _lose(self) -> None:
        if not self.held:
            return
        self.held = False
        HELD.labels(self.name).set(0)
        try:
            await self._end()
        except Exception:
            log.exception("work under a lease did not stop cleanly", work=self.name)
