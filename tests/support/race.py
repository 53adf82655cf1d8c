"""Run in a separate process: open a store, wait at the barrier, append at expected version 0."""

from __future__ import annotations

import asyncio
from typing import Any


def append_first(url: str, service: str, stream_id: str, barrier: Any, results: Any) -> None:
    from cortex.kernel.store import ConcurrencyError, NewEvent, open_store

    async def go() -> str:
        store = await open_store(url, service)
        try:
            barrier.wait(timeout=30)
            await store.append(
                stream_id,
                [NewEvent(type="race.won", stream_type="race", data=b'{"by": "process"}')],
                0,
            )
            return "won"
        except ConcurrencyError:
            return "conflict"
        finally:
            await store.close()

    results.put(asyncio.run(go()))
