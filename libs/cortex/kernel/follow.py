"""Following a service's event log from every replica.

Each replica publishes a prompt on `<root>.appended.<service>` (core NATS) after it appended;
every replica listens and, prompted, catches its read models up and kicks its relay. A missed
prompt (NATS away for a moment, a replica that started between an append and its prompt) is
bounded by a catch-up every `interval` seconds whatever happens: reading after the last
position finds nothing in the usual case and costs one indexed query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import cancel_and_wait, wait_event

log = get_logger()


class LogFollower:
    def __init__(
        self,
        nc: NATS,
        subject: str,
        *,
        interval: float,
        catch_up: Callable[[], Awaitable[object]],
    ) -> None:
        self._nc = nc
        self._subject = subject
        self._interval = interval
        self._catch_up = catch_up
        self._prompted = asyncio.Event()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._subject, cb=self._prompt)
        self._task = asyncio.create_task(self._run(), name=f"follow-{self._subject}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # the connection is draining or closed already
                log.debug("follower unsubscribe failed", error=str(exc) or repr(exc))
            self._sub = None

    async def _prompt(self, msg: Msg) -> None:
        self._prompted.set()

    async def _run(self) -> None:
        while True:
            await wait_event(self._prompted, self._interval)
            # Prompts that arrive while catching up are covered by this round or set the
            # event again for the next one: none is lost.
            self._prompted.clear()
            try:
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("catching up with the log failed", error=str(exc) or repr(exc))
