"""Run in a separate process: one writer of an agent's state, with its own NATS connection, its
own service client and its own clock, racing the others from the barrier on."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def write_values(
    nats_url: str,
    prefix: str,
    agent_id: str,
    writer: str,
    skew_ns: int,
    count: int,
    barrier: Any,
    results: Any,
) -> None:
    """Put `count` values unconditionally; report `(written_at, writer, value, applied)` of
    each, or the error that stopped the writer."""
    import nats

    from cortex.contracts.state import PutState, StateWrite
    from cortex.contracts.subjects import Subjects
    from cortex.kernel.bus.rpc import ServiceClient

    async def go() -> list[tuple[int, str, Any, bool]]:
        nc = await nats.connect(nats_url)
        try:
            client = ServiceClient(nc, Subjects(prefix), timeout=10)
            done: list[tuple[int, str, Any, bool]] = []
            await asyncio.to_thread(barrier.wait, 30)
            for n in range(count):
                value = {"writer": writer, "n": n}
                written_at = time.time_ns() + skew_ns
                cmd = PutState(agent_id=agent_id, value=value, writer=writer, written_at=written_at)
                reply = await client.call("registry", "state.put", cmd, StateWrite)
                done.append((written_at, writer, value, reply.applied))
            return done
        finally:
            await nc.close()

    try:
        results.put(asyncio.run(go()))
    except Exception as exc:
        results.put(f"{writer}: {exc!r}")
