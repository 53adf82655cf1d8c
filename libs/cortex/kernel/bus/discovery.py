"""Asking every instance of every service at once (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


async def scatter(nc: NATS, subject: str, *, wait: float = 1.0, idle: float = 0.3) -> list[Any]:
    """Publish one request and collect every JSON reply until `idle` seconds pass without one
    (or `wait` in all). Unreadable replies are skipped. (With 0.15 s, a replica busy catching
    up on a loaded machine answered too late and went missing from `/api/v1/status`.)"""
    inbox = nc.new_inbox()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        replies.put_nowait(msg.data)

    sub = await nc.subscribe(inbox, cb=collect)
    out: list[Any] = []
    try:
        await nc.publish(subject, b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(replies.get(), timeout=min(idle, left))
            except TimeoutError:
                break
            with contextlib.suppress(msgspec.DecodeError):
                out.append(msgspec.json.decode(data))
    finally:
        await sub.unsubscribe()
    return out
