"""Deciding against the read model and appending a host's events at the expected version.

Heartbeats and the health clock both write to host streams; a lock per host keeps them from
racing each other inside this process, so a `ConcurrencyError` means another writer (a second
registry replica) got there first. Then the stream is read back, folded, decided on again and
appended at its real version; the runtime's catch-up after that append brings the read model
level with the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cortex.contracts.registry import HostDeregistered, InstanceDeregistered, InstanceRegistered
from cortex.kernel.ids import new_id
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.store import ConcurrencyError
from cortex.registry.domain import (
    STREAM_TYPE,
    HostEvent,
    HostState,
    codec,
    evolve,
    stream_id,
)
from cortex.registry.live import LiveData
from cortex.registry.projections import HostsProjection

Decide = Callable[[HostState | None], Sequence[HostEvent]]

log = get_logger()


class HostWriter:
    def __init__(
        self,
        runtime: ServiceRuntime,
        projection: HostsProjection,
        live: LiveData,
        *,
        retries: int = 5,
    ) -> None:
        self._runtime = runtime
        self._projection = projection
        self._live = live
        self._locks = KeyedLocks()
        self._retries = retries

    async def write(self, host_id: str, decide: Decide) -> list[HostEvent]:
        """Decide on the host's current state and append what it returns as one batch;
        returns the events appended (none when nothing changed)."""
        async with self._locks.hold(host_id):
            state = self._projection.host(host_id)
            version = self._projection.stream_version(host_id)
            for attempt in range(self._retries):
                events = list(decide(state))
                if not events:
                    return []
                # One correlation id per decision ties together what one heartbeat or tick did.
                cause = new_id()
                new = [codec.new(e, stream_type=STREAM_TYPE, correlation_id=cause) for e in events]
                try:
                    await self._runtime.append(stream_id(host_id), new, version)
                except ConcurrencyError as exc:
                    if attempt == self._retries - 1:
                        raise
                    log.info("host stream moved; deciding again", host_id=host_id, error=str(exc))
                    state, version = await self._load(host_id)
                    continue
                self._forget(host_id, events)
                return events
        raise AssertionError("unreachable")

    async def _load(self, host_id: str) -> tuple[HostState | None, int]:
        """The host's state straight from its stream: the read model lags behind a writer
        that is not this process."""
        state: HostState | None = None
        version = 0
        envelopes = await self._runtime.store.read(stream_id(host_id))
        for envelope, event in self._runtime.quarantine.decoded(codec, envelopes, "host"):
            if event is not None:
                state = evolve(state, event, envelope.occurred_at)
            version = envelope.version
        return state, version

    def _forget(self, host_id: str, events: list[HostEvent]) -> None:
        # An id that a new boot registers again in the same batch keeps what was just heard.
        again = {e.instance_id for e in events if isinstance(e, InstanceRegistered)}
        for event in events:
            if isinstance(event, InstanceDeregistered) and event.instance_id not in again:
                self._live.forget_instance(event.instance_id)
            elif isinstance(event, HostDeregistered):
                self._live.forget_host(host_id)
