"""Event-sourced aggregates: load a stream into state, decide, append with optimistic locking.

A service describes each aggregate with two pure functions, `evolve(state, event) -> state` and
a `decide(state) -> events` per command, and lets a `Repository` do the I/O: read the stream,
fold it, decide, append at the version it read. A lost race (another writer appended first) is
retried with the fresh state, so concurrent commands serialize without locks.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from cortex.kernel.events import EventCodec
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.store import ConcurrencyError, NewEvent

S = TypeVar("S")

Decide = Callable[[S], Sequence[msgspec.Struct] | Awaitable[Sequence[msgspec.Struct]]]
"""A decision on the state, or a coroutine of one (for a decision that reads other streams)."""


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
        """The stream's state and version. An event that does not decode is quarantined and
        passed over: the aggregate's other events still count, and the version stays the
        stream's, so the next append is not refused for it."""
        state = self._initial()
        version = 0
        envelopes = await self._runtime.store.read(stream_id)
        reader = f"aggregate {self._stream_type}"
        for envelope, event in self._runtime.quarantine.decoded(self._codec, envelopes, reader):
            if event is not None:
                state = self._evolve(state, event)
            version = envelope.version
        return state, version

    def check_size(
        self, stream_id: str, events: Sequence[msgspec.Struct], ctx: Context | None
    ) -> None:
        """Refuse now (`too_large`) events the bus could not carry: for a command that must
        not make the appends it makes before appending them."""
        self._runtime.check_size(stream_id, self._new(events, ctx))

    async def execute(
        self, stream_id: str, decide: Decide[S], ctx: Context | None, *, dry_run: bool = False
    ) -> Outcome[S]:
        """Decide on the current state and append; with `dry_run`, decide only.

        `decide` raises a `CortexError` to refuse the command; it may return no events."""
        for attempt in range(self._retries):
            state, version = await self.load(stream_id)
            decided = decide(state)
            events = list(await decided if inspect.isawaitable(decided) else decided)
            after = state
            for event in events:
                after = self._evolve(after, event)
            if dry_run or not events:
                return Outcome(after, version, events)
            try:
                version = await self._runtime.append(
                    stream_id, self._new(events, ctx), version, ctx=ctx
                )
            except ConcurrencyError:
                if attempt == self._retries - 1:
                    raise
                continue
            return Outcome(after, version, events)
        raise AssertionError("unreachable")

    def _new(self, events: Sequence[msgspec.Struct], ctx: Context | None) -> list[NewEvent]:
        return [
            self._codec.new(
                e,
                stream_type=self._stream_type,
                correlation_id=ctx.correlation_id if ctx else None,
                actor=ctx.actor if ctx else None,
            )
            for e in events
        ]
