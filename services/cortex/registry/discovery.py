"""`discovery.resolve`: from an agent's id, name or `<name>.<pool>` to its healthy instances, the
subjects that reach them, and optionally one instance picked to balance load.

Who the agent is (id, name, pool, status) is the lifecycle service's to say; where it runs is
the registry's own read model, with the in-flight counts of the last heartbeats. When the
lifecycle service is down, an agent id that has healthy instances here still resolves from the
registry's data alone, so that agents already running keep finding each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortex.contracts.discovery import Discovery, Endpoint, Pick, Resolve
from cortex.contracts.lifecycle import AgentRef, AgentView
from cortex.kernel.errors import Invalid, NotFound, Timeout, Unavailable
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.registry.live import LiveData
from cortex.registry.projections import HostsProjection

UNKNOWN_STATUS = "unknown"


@dataclass(frozen=True, slots=True)
class _Agent:
    id: str
    name: str
    pool: str | None
    status: str


class Resolver:
    def __init__(
        self, runtime: ServiceRuntime, projection: HostsProjection, live: LiveData
    ) -> None:
        self._runtime = runtime
        self._projection = projection
        self._live = live
        self._turns: dict[str, int] = {}
        """Round robin: how many picks each agent has had from this replica."""

    async def resolve(self, req: Resolve) -> Discovery:
        ref, pool = split_ref(req.ref)
        agent = await self._agent(ref, pool)
        endpoints = self.endpoints(agent.id)
        picked = None
        if req.pick is not None:
            if not endpoints:
                raise Unavailable(f"agent {req.ref} has no healthy instance")
            picked = self._pick(agent.id, endpoints, req.pick)
        return Discovery(
            agent_id=agent.id,
            name=agent.name,
            pool=agent.pool,
            status=agent.status,
            inbox=self._runtime.subjects.agent_inbox(agent.id),
            endpoints=endpoints,
            picked=picked,
        )

    def endpoints(self, agent_id: str) -> list[Endpoint]:
        """The agent's healthy instances, by instance id."""
        subjects = self._runtime.subjects
        reports = self._live.reports
        found = []
        for iid, host_id, instance in self._projection.instances_of(agent_id):
            if instance.health != "healthy":
                continue
            report = reports.get(iid)
            found.append(
                Endpoint(
                    instance_id=iid,
                    host_id=host_id,
                    health=instance.health,
                    inflight=report.inflight if report else 0,
                    direct=subjects.instance(host_id, iid),
                )
            )
        return found

    async def _agent(self, ref: str, pool: str | None) -> _Agent:
        try:
            view = await self._runtime.client().call(
                "lifecycle", "agent.get", AgentRef(ref=ref), AgentView
            )
        except (Unavailable, Timeout):
            fallback = self._known_here(ref) if pool is None else None
            if fallback is None:
                raise
            return fallback
        if pool is not None and view.pool != pool:
            where = f"pool {view.pool!r}" if view.pool else "no pool"
            raise NotFound(f"agent {ref!r} is not in pool {pool!r} (it is in {where})")
        return _Agent(id=view.id, name=view.name, pool=view.pool, status=view.status)

    def _known_here(self, agent_id: str) -> _Agent | None:
        """The agent as the registry alone knows it: only an id with a healthy instance, since
        names and pools are the lifecycle's and a registered id may belong to a purged agent."""
        for _, _, instance in self._projection.instances_of(agent_id):
            if instance.health == "healthy":
                return _Agent(
                    id=agent_id, name=instance.agent_name, pool=None, status=UNKNOWN_STATUS
                )
        return None

    def _pick(self, agent_id: str, endpoints: list[Endpoint], pick: Pick) -> Endpoint:
        if pick == "least_loaded":
            return min(endpoints, key=lambda e: (e.inflight, e.instance_id))
        turn = self._turns.get(agent_id, 0)
        self._turns[agent_id] = turn + 1
        return endpoints[turn % len(endpoints)]


def split_ref(ref: str) -> tuple[str, str | None]:
    """`name.pool` into its name and pool (at the last dot); an id or a name has no pool."""
    name, dot, pool = ref.rpartition(".")
    if not dot:
        return ref, None
    if not name or not pool:
        raise Invalid.field("$.ref", "must be an agent id, a name, or <name>.<pool>")
    return name, pool
