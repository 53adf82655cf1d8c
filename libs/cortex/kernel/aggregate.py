"""Event-sourced aggregates: load a stream into state, decide, append with optimistic locking.

A service describes each aggregate with two pure functions, `evolve(state, event) -> state` and
a `decide(state) -> events` per command, and lets a `Repository` do the I/O: read the stream,
fold it, decide, append at the version it read. A lost race (another writer appended first) is
retried with the fresh state, so concurrent commands serialize without locks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from cortex.kernel.events import EventCodec
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.store import ConcurrencyError

S = TypeVar("S")

Decide = Callable[[S], Sequence[msgspec.Struct]]


@dataclass(frozen=True)
class Outcome(Generic[S]):
    state: S
    version: int
    events: list[msgspec.Struct]


class Repository(Generic[S]):
    def __init__(
        self,
        runtime: ServiceRuntime,
        codec: EventCodec,
        *,
        stream_type: str,
        initial: Callable[[], S],
        evolve: Callable[[S, Any], S],
        retries: int = 5,
    ) -> None:
        self._runtime = runtime
        self._codec = codec
        self._stream_type = stream_type
        self._initial = initial
        self._evolve = evolve
        self._retries = retries

    async def load(self, stream_id: str) -> tuple[S, int]:
        state = self._initial()
        version = 0
        for envelope in await self._runtime.store.read(stream_id):
            event = self._codec.decode(envelope)
            if event is not None:
                state = self._evolve(state, event)
            version = envelope.version
        return state, version

    async def execute(
        self, stream_id: str, decide: Decide[S], ctx: Context | None, *, dry_run: bool = False
    ) -> Outcome[S]:
        """Decide on the current state and append; with `dry_run`, decide only.

        `decide` raises a `CortexError` to refuse the command; it may return no events."""
        for attempt in range(self._retries):
            state, version = await self.load(stream_id)
            events = list(decide(state))
            after = state
            for event in events:
                after = self._evolve(after, event)
            if dry_run or not events:
                return Outcome(after, version, events)
            new = [
                self._codec.new(
                    e,
                    stream_type=self._stream_type,
                    correlation_id=ctx.correlation_id if ctx else None,
                    actor=ctx.actor if ctx else None,
                )
                for e in events
            ]
            try:
                version = await self._runtime.append(stream_id, new, version)
            except ConcurrencyError:
                if attempt == self._retries - 1:
                    raise
                continue
            return Outcome(after, version, events)
        raise AssertionError("unreachable")
