"""Reading a stream from a point and then following it, with an ordered (ephemeral) consumer.

For read models of JetStream itself: nothing is acknowledged and nothing is kept on the server
(an ordered consumer lives in memory and goes away with its subscription), the client recreates
it where it left off after a gap or a server restart, and `caught_up` tells when everything the
stream held at the start has been read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cortex.kernel.logging import get_logger

log = get_logger()

HEARTBEAT = 1.0

Handler = Callable[[str, dict[str, str], bytes, int, datetime | None], None]
"""(subject, headers, data, stream sequence, stored at)."""


class StreamFollower:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        subject: str,
        handler: Handler,
        headers_only: bool = False,
        keep_last: int | None = None,
    ) -> None:
        """`keep_last`: start that many messages before the end (a bounded read model that would
        forget the older ones anyway need not read them)."""
        self._js = js
        self.stream = stream
        self._subject = subject
        self._handler = handler
        self._headers_only = headers_only
        self._keep_last = keep_last
        self._last_seq = 0
        self._start_seq = 1
        self._sub: JetStreamContext.PushSubscription | None = None
        self.caught_up = asyncio.Event()

    async def start(self) -> None:
        info = await self._js.stream_info(self.stream)
        state = info.state
        start = max(1, state.first_seq)
        if self._keep_last is not None:
            start = max(start, state.last_seq - self._keep_last + 1)
        self._start_seq = start
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        self._sub = await self._js.subscribe(
            self._subject,
            stream=self.stream,
            cb=self._on_msg,
            ordered_consumer=True,
            headers_only=self._headers_only or None,
            # Two missed heartbeats and the client recreates the consumer where it left off:
            # after a nats-server restart (the consumer lived in its memory) this is how soon
            # the index follows again. One small message a second per stream when idle.
            idle_heartbeat=HEARTBEAT,
            config=config,
        )
        try:
            consumer = await self._sub.consumer_info()
        except Exception:
            await self.stop()
            raise
        delivered = consumer.delivered.consumer_seq if consumer.delivered else 0
        if consumer.num_pending == 0 and not delivered:
            self.caught_up.set()  # nothing to read: an empty stream (or filter)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # closed connection: the consumer is gone with it
                log.debug("follower unsubscribe failed", stream=self.stream, error=str(exc))
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        meta = msg.metadata
        seq = meta.sequence.stream
        # The client recreates an ordered consumer after a gap from the last sequence it saw,
        # which before the first message is the stream's start, not ours: skip what we have.
        if seq > self._last_seq and seq >= self._start_seq:
            self._last_seq = seq
            try:
                self._handler(msg.subject, dict(msg.headers or {}), msg.data, seq, meta.timestamp)
            except Exception:
                log.exception("message not indexed", stream=self.stream, seq=seq)
        if meta.num_pending == 0:
            self.caught_up.set()
