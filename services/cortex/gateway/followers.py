"""Live events of one stream for the gateway's server-sent event streams.

One subscription per service's events serves every follower of the gateway, routed by the
event's stream id: a subscription per follower would hand every event to every follower, so
the work would grow with followers times events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cortex.contracts import headers as h
from cortex.contracts.subjects import Subjects


class EventFollowers:
    def __init__(self, connection: Callable[[], NATS], subjects: Subjects) -> None:
        self._connection = connection
        self._subjects = subjects
        self._subs: dict[str, Subscription] = {}
        self._queues: dict[str, set[asyncio.Queue[Msg]]] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def follow(self, service: str, stream_id: str) -> AsyncIterator[asyncio.Queue[Msg]]:
        """A queue of the stream's events published from now on; read the stream's current
        state after entering, and nothing falls between the two."""
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        followers = self._queues.setdefault(stream_id, set())
        followers.add(queue)
        try:
            await self._subscribe(service)
            yield queue
        finally:
            followers.discard(queue)
            if not followers:
                self._queues.pop(stream_id, None)

    async def _subscribe(self, service: str) -> None:
        async with self._lock:
            if service in self._subs:
                return
            nc = self._connection()
            self._subs[service] = await nc.subscribe(
                self._subjects.events_of(service), cb=self._route
            )
            # The server has the interest before the caller reads the current state.
            await nc.flush()

    async def _route(self, msg: Msg) -> None:
        stream_id = (msg.headers or {}).get(h.STREAM_ID)
        for queue in self._queues.get(stream_id or "", ()):
            queue.put_nowait(msg)
