"""An execution's stream as its runner writes it: every transition appended, in order, at the
version the runner last wrote, before the runner acts on it.

Appends are serialized (the steps of a parallel group report at the same time) and each runs to
its end even when the runner is cancelled meanwhile: an append cut off halfway could be in the
store without the runner knowing its version. Appending at the expected version is what keeps
two runners of one execution (a lease that expired under a paused replica) from both writing:
the one that finds the stream moved gets `ConcurrencyError` and stops.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cortex.kernel.service.runtime import ServiceRuntime

from .domain import CODEC, EXECUTION, ExecutionState, evolve_execution, execution_stream


class Journal:
    def __init__(
        self,
        runtime: ServiceRuntime,
        execution_id: str,
        state: ExecutionState,
        version: int,
        *,
        correlation_id: str | None,
        actor: str | None,
    ) -> None:
        self._runtime = runtime
        self.stream_id = execution_stream(execution_id)
        self.state = state
        self.version = version
        self.correlation_id = correlation_id
        """The `workflow.execute` request's: every event and every step's work carries it."""
        self._actor = actor
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    async def record(self, *events: Any) -> None:
        """Append, then fold into `state`; raises `ConcurrencyError` if another writer got
        there first (a cancel, or another runner)."""
        task = asyncio.create_task(self._append(events))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        await asyncio.shield(task)

    async def _append(self, events: tuple[Any, ...]) -> None:
        async with self._lock:
            new = [
                CODEC.new(
                    e,
                    stream_type=EXECUTION,
                    correlation_id=self.correlation_id,
                    actor=self._actor,
                )
                for e in events
            ]
            self.version = await self._runtime.append(self.stream_id, new, self.version)
            for event in events:
                self.state = evolve_execution(self.state, event)

    async def settle(self) -> None:
        """Wait for appends still under way (after the runner was cancelled)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
