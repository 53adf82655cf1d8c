"""The outbox relay: every appended event reaches `CORTEX_EVENTS`, once.

The event store is the outbox. The relay keeps a checkpoint (the position of the last event
JetStream acknowledged) in the store's meta area and publishes everything after it, in commit
order, with `Nats-Msg-Id: <event_id>`. After a crash between an append and its publish, the next
start finds the event after the checkpoint and publishes it; an event that was published but
not yet checkpointed is published again and dropped by JetStream's duplicate window.
Normal operation uses the same path: a service `kick()`s the relay after each append.

One replica of a service relays at a time, the one holding the lease `<service>.relay`; the
others' appends reach it through the prompt every append publishes (`cortex.kernel.follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from nats.js.client import JetStreamContext

from cortex.contracts import headers
from cortex.contracts.events import EventEnvelope
from cortex.contracts.subjects import Subjects
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import SERVICES, counter, gauge, lease_holder
from cortex.kernel.store.port import EventStore
from cortex.kernel.waiting import cancel_and_wait, wait_event

log = get_logger()

PUBLISHED = counter(
    "cortex_relay_published_events_total",
    "Events the outbox relay published",
    ["service"],
    exported_by=f"{SERVICES}: {lease_holder('<service>.relay')}",
)
LAG = gauge(
    "cortex_relay_lag_events",
    "Events appended but not yet acknowledged by JetStream, as the relay last saw them",
    ["service"],
    exported_by=f"{SERVICES}: {lease_holder('<service>.relay')}",
)

CHECKPOINT_KEY = "relay:checkpoint"
CHECKPOINT_EVERY = 1.0
"""Seconds between checkpoint writes while events keep coming (well inside the duplicate
window of `CORTEX_EVENTS`, two minutes)."""


def event_headers(event: EventEnvelope) -> dict[str, str]:
    out = {
        headers.MSG_ID: event.event_id,
        headers.EVENT_TYPE: event.type,
        headers.STREAM_ID: event.stream_id,
    }
    if event.correlation_id:
        out[headers.CORRELATION_ID] = event.correlation_id
    return out


class OutboxRelay:
    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        subjects: Subjects,
        service: str,
        *,
        batch_size: int = 256,
        poll_interval: float = 1.0,
    ) -> None:
        self._store = store
        self._js = js
        self._subjects = subjects
        self._service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.checkpoint = 0
        self._saved = 0
        self._saved_at = 0.0

    async def start(self) -> None:
        """Publish from the saved checkpoint on, until `stop`. Read from the store each time:
        the replica that relayed before this one moved it."""
        raw = await self._store.get_meta(CHECKPOINT_KEY)
        self.checkpoint = self._saved = int(raw) if raw else 0
        self._wake.set()
        self._task = asyncio.create_task(self._loop(), name=f"relay-{self._service}")

    def kick(self) -> None:
        """Publish soon: something was appended."""
        self._wake.set()

    async def flush(self, *, save: bool = False) -> int:
        """Publish everything appended so far; returns how many events went out.

        The checkpoint is written at most every `CHECKPOINT_EVERY` seconds (and when `save`
        asks): a write per batch would cost a synchronous commit per command under load, and
        what a crash leaves after the saved checkpoint is only published again, within
        JetStream's duplicate window, and dropped there."""
        async with self._lock:
            sent = 0
            try:
                while True:
                    batch = await self._store.read_all(self.checkpoint, self._batch_size)
                    if not batch:
                        LAG.labels(self._service).set(0)
                        break
                    # One at a time, in commit order, and the checkpoint behind each: a publish
                    # that fails stops the batch there, so no later event reaches the stream
                    # before it (publishing a batch at once let later events overtake one that
                    # failed and was published again afterwards).
                    lag = LAG.labels(self._service)
                    for event in batch:
                        lag.set(batch[-1].position - self.checkpoint)
                        await self._publish(event)
                        self.checkpoint = event.position
                        sent += 1
                        PUBLISHED.labels(self._service).inc()
                    # Under steady load the log never reads empty: save by time here too.
                    await self._save(save=False)
            finally:
                await self._save(save=save)
            return sent

    async def _save(self, *, save: bool) -> None:
        due = time.monotonic() - self._saved_at >= CHECKPOINT_EVERY
        if self.checkpoint != self._saved and (save or due):
            await self._store.put_meta(CHECKPOINT_KEY, str(self.checkpoint).encode())
            self._saved, self._saved_at = self.checkpoint, time.monotonic()

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait(self._task)
            self._task = None
        try:
            await asyncio.wait_for(self.flush(save=True), timeout=5)
        except Exception as exc:
            # Nothing is lost: the next start publishes whatever is after the checkpoint.
            log.warning("relay not flushed at stop", error=str(exc) or type(exc).__name__)
        # The replica that relays next reports the lag; a figure left here would be counted
        # twice when the platform's lag is summed.
        with contextlib.suppress(KeyError):
            LAG.remove(self._service)

    async def _publish(self, event: EventEnvelope) -> None:
        await self._js.publish(
            self._subjects.event(self._service, event.type),
            msgspec.json.encode(event),
            headers=event_headers(event),
            timeout=5,
        )

    async def _loop(self) -> None:
        backoff = 0.2
        while True:
            await wait_event(self._wake, self._poll_interval)
            self._wake.clear()
            try:
                await self.flush()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                with contextlib.suppress(Exception):
                    last = await self._store.last_position()
                    LAG.labels(self._service).set(max(0, last - self.checkpoint))
                log.warning(
                    "relay publish failed; retrying",
                    error=str(exc) or type(exc).__name__,
                    retry_in=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()
