"""Writing agent state: decide, append at the stream's version, announce to watchers.

Writes to one agent's document take a lock per agent in this process, so that they decide one
after the other on the state the previous one left and are announced in the order they were
applied; a `ConcurrencyError` then means another registry replica wrote first, and the
repository decides again on the fresh state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec

from cortex.contracts.state import PatchState, PutState, StateView, StateWrite
from cortex.kernel.aggregate import Repository
from cortex.kernel.errors import Invalid, PreconditionFailed
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.registry import state_domain
from cortex.registry.metrics import STATE_WRITES
from cortex.registry.state_domain import STREAM_TYPE, Doc, StateEvent, agent_of, codec, evolve
from cortex.registry.state_projection import StateProjection

log = get_logger()


class StateRepository(Repository[Doc]):
    """The kernel's repository, loading from the read model plus whatever the stream holds
    beyond it.

    Folding the whole stream at every write, as the plain repository does, would make each
    write slower than the last: a state stream grows by one event per write, and an agent may
    write at every message it handles. The read model is caught up by every append of this
    process; reading the stream from its version on adds what other replicas appended since.
    """

    def __init__(self, runtime: ServiceRuntime, projection: StateProjection) -> None:
        super().__init__(runtime, codec, stream_type=STREAM_TYPE, initial=Doc, evolve=evolve)
        self._source = runtime
        self._projection = projection

    async def load(self, stream_id: str) -> tuple[Doc, int]:
        agent_id = agent_of(stream_id)
        if agent_id is None:
            raise ValueError(f"{stream_id!r} is not a state stream")
        doc, version = self._projection.doc(agent_id)
        envelopes = await self._source.store.read(stream_id, version + 1)
        for envelope, event in self._source.quarantine.decoded(codec, envelopes, "agent state"):
            if event is not None:
                doc = evolve(doc, event)
            version = envelope.version
        return doc, version


class StateWriter:
    def __init__(self, runtime: ServiceRuntime, projection: StateProjection) -> None:
        self._runtime = runtime
        self._projection = projection
        self._repository = StateRepository(runtime, projection)
        self._locks = KeyedLocks()

    async def put(self, cmd: PutState, ctx: Context) -> StateWrite:
        now = time.time_ns()
        return await self._write(
            cmd.agent_id, lambda doc: state_domain.put(doc, cmd, now), ctx, count=True
        )

    async def patch(self, cmd: PatchState, ctx: Context) -> StateWrite:
        now = time.time_ns()
        return await self._write(
            cmd.agent_id, lambda doc: state_domain.patch(doc, cmd, now), ctx, count=True
        )

    async def delete(self, agent_id: str, reason: str, ctx: Context) -> bool:
        """Delete the agent's document; False when it had none."""
        written = await self._write(
            agent_id, lambda doc: state_domain.delete(doc, agent_id, reason), ctx, count=False
        )
        return written.applied

    def subject(self, agent_id: str) -> str:
        """Where watchers hear of the agent's state; an id that cannot be a subject token is
        refused, as nobody could ever watch it."""
        try:
            return self._runtime.subjects.state(agent_id)
        except ValueError:
            raise Invalid.field(
                "$.agent_id", "must be an agent id (letters, digits, '-', '_')"
            ) from None

    async def _write(
        self,
        agent_id: str,
        decide: Callable[[Doc], Sequence[StateEvent]],
        ctx: Context,
        *,
        count: bool,
    ) -> StateWrite:
        subject = self.subject(agent_id)
        async with self._locks.hold(agent_id):
            try:
                outcome = await self._repository.execute(
                    state_domain.stream_id(agent_id), decide, ctx
                )
            except PreconditionFailed:
                if count:
                    STATE_WRITES.labels("conflict").inc()
                raise
            state = self._view(agent_id, outcome.state)
            applied = bool(outcome.events)
            if count:
                STATE_WRITES.labels("applied" if applied else "superseded").inc()
            if applied:
                # Under the lock: watchers hear of this agent's versions in the order applied.
                await self._announce(subject, state, ctx)
            return StateWrite(state=state, applied=applied)

    def _view(self, agent_id: str, doc: Doc) -> StateView:
        # The read model has the version with its `updated_at` (the event's time), unless
        # another replica's write was read from the stream and is not in it yet.
        found = self._projection.at(agent_id, doc.version) if doc.version else None
        if found is not None and (found.written_at, found.writer) == doc.stamp:
            return found
        return state_domain.view(agent_id, doc)

    async def _announce(self, subject: str, state: StateView, ctx: Context) -> None:
        try:
            await self._runtime.nc.publish(subject, msgspec.json.encode(state))
        except Exception as exc:
            # The change is recorded (and in the history); only this notification is lost.
            ctx.log.warning("state change not announced", subject=subject, error=str(exc))
