"""The registry's read model: every registered host with its instances, built only from events.

It also keeps each host stream's current version, so that a heartbeat is decided and appended
at an expected version without reading the stream back, and indexes from instance id to host
and from agent id to instances (derived, so they are rebuilt after a restore rather than
snapshotted).
"""

from __future__ import annotations

from bisect import bisect_right

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.projection import StructProjection
from cortex.registry.domain import HostState, InstanceState, codec, evolve, host_of


class Hosts(msgspec.Struct):
    hosts: dict[str, HostState] = {}
    versions: dict[str, int] = {}
    """Current version of every host stream, kept after a host is deregistered: a host that
    comes back appends after its old events."""


class HostsProjection(StructProjection[Hosts]):
    name = "registry-hosts"
    version = 1
    model_type = Hosts

    def __init__(self) -> None:
        super().__init__()
        self._host_of: dict[str, str] = {}
        self._agent_of: dict[str, str] = {}
        self._of_agent: dict[str, set[str]] = {}
        self._sorted: list[str] | None = None

    # --- folding ---------------------------------------------------------------------------

    def apply(self, event: EventEnvelope) -> None:
        host_id = host_of(event.stream_id)
        if host_id is None:
            return
        self.model.versions[host_id] = event.version
        data = codec.decode(event)
        if data is None:
            return
        before = self.model.hosts.get(host_id)
        after = evolve(before, data, event.occurred_at)
        if after is None:
            self.model.hosts.pop(host_id, None)
            if before is not None:
                self._unindex(host_id, list(before.instances))
            return
        self.model.hosts[host_id] = after
        instance_id: str | None = getattr(data, "instance_id", None)
        if instance_id is None:
            return
        instance = after.instances.get(instance_id)
        if instance is not None:
            if self._host_of.get(instance_id) != host_id:
                self._host_of[instance_id] = host_id
                self._sorted = None
            if self._agent_of.get(instance_id) != instance.agent_id:
                self._drop_agent(instance_id)
                self._agent_of[instance_id] = instance.agent_id
                self._of_agent.setdefault(instance.agent_id, set()).add(instance_id)
        else:
            self._unindex(host_id, [instance_id])

    def restore(self, data: bytes) -> None:
        super().restore(data)
        self._reindex()

    def reset(self) -> None:
        super().reset()
        self._reindex()

    def _unindex(self, host_id: str, instance_ids: list[str]) -> None:
        for iid in instance_ids:
            # An id may have moved to another host meanwhile; that entry is not ours to drop.
            if self._host_of.get(iid) == host_id:
                del self._host_of[iid]
                self._drop_agent(iid)
                self._sorted = None

    def _drop_agent(self, instance_id: str) -> None:
        agent_id = self._agent_of.pop(instance_id, None)
        if agent_id is None:
            return
        ids = self._of_agent[agent_id]
        ids.discard(instance_id)
        if not ids:
            del self._of_agent[agent_id]

    def _reindex(self) -> None:
        self._host_of = {}
        self._agent_of = {}
        self._of_agent = {}
        for host_id, host in self.model.hosts.items():
            for iid, instance in host.instances.items():
                self._host_of[iid] = host_id
                self._agent_of[iid] = instance.agent_id
        for iid, agent_id in self._agent_of.items():
            self._of_agent.setdefault(agent_id, set()).add(iid)
        self._sorted = None

    # --- reading ---------------------------------------------------------------------------

    def host(self, host_id: str) -> HostState | None:
        return self.model.hosts.get(host_id)

    def stream_version(self, host_id: str) -> int:
        return self.model.versions.get(host_id, 0)

    def hosts(self) -> dict[str, HostState]:
        return self.model.hosts

    def instance(self, instance_id: str) -> tuple[str, InstanceState] | None:
        host_id = self._host_of.get(instance_id)
        if host_id is None:
            return None
        host = self.model.hosts.get(host_id)
        instance = host.instances.get(instance_id) if host else None
        return (host_id, instance) if instance is not None else None

    def instances_of(self, agent_id: str) -> list[tuple[str, str, InstanceState]]:
        """The agent's registered instances as (instance id, host id, instance), by id."""
        found = []
        for iid in sorted(self._of_agent.get(agent_id, ())):
            located = self.instance(iid)
            if located is not None and located[1].agent_id == agent_id:
                found.append((iid, *located))
        return found

    def instance_ids(self, after: str | None = None) -> list[str]:
        """Every registered instance id in order, from the first one after `after`."""
        if self._sorted is None:
            self._sorted = sorted(self._host_of)
        if after is None:
            return self._sorted
        return self._sorted[bisect_right(self._sorted, after) :]

    def instance_count(self) -> int:
        return len(self._host_of)
