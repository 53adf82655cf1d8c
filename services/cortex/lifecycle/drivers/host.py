"""The `host` driver: replicas as asyncio tasks on agent hosts, least loaded host first."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence

from cortex.contracts.hosts import ReplicaSpec, StartReplicas, StartResult, StopReplicas, StopResult
from cortex.contracts.registry import HostView, InstancePage, ListHosts, ListInstances
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import CortexError
from cortex.kernel.logging import get_logger

from .port import (
    Observation,
    ObservedHost,
    ObservedInstance,
    Placement,
    StartFailure,
    StartRequest,
)

log = get_logger()

BATCH = 500
"""Replicas per start request to one host."""


def new_instance_id(agent_name: str) -> str:
    """`<agent name>-<random>`, like a pod name: readable in listings, unique."""
    return f"{agent_name[:50]}-{secrets.token_hex(4)}"


class HostDriver:
    runtime = "host"

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def observe(self) -> Observation:
        hosts = await self._client.call("registry", "host.list", ListHosts(), list[HostView])
        instances: list[ObservedInstance] = []
        after: str | None = None
        while True:
            page = await self._client.call(
                "registry", "instance.list", ListInstances(limit=5000, after=after), InstancePage
            )
            instances += [
                ObservedInstance(
                    id=i.id,
                    agent_id=i.agent_id,
                    host_id=i.host_id,
                    health=i.health,
                    state=i.state,
                    started_at=i.registered_at,
                )
                for i in page.items
            ]
            if page.next is None:
                break
            after = page.next
        return Observation(
            instances=instances,
            hosts=[
                ObservedHost(id=h.id, health=h.health, replicas=h.replicas, capacity=h.capacity)
                for h in hosts
            ],
        )

    async def start(
        self,
        requests: Sequence[StartRequest],
        observation: Observation,
        pending: Mapping[str, int],
    ) -> tuple[list[Placement], list[StartFailure]]:
        load: dict[str, int] = {}
        room: dict[str, int | None] = {}
        for seen in observation.hosts:
            if seen.health == "healthy":
                load[seen.id] = pending.get(seen.id, 0)
                room[seen.id] = seen.capacity or None
        for instance in observation.instances:
            if instance.host_id in load and instance.health != "gone":
                load[instance.host_id] += 1
        failures: list[StartFailure] = []
        specs: dict[str, list[ReplicaSpec]] = defaultdict(list)
        for request in requests:
            for _ in range(request.count):
                candidates = [h for h in load if room[h] is None or load[h] < (room[h] or 0)]
                if not candidates:
                    failures.append(
                        StartFailure(
                            agent_id=request.agent.id,
                            agent_fault=False,
                            error="no healthy agent host with room for another replica",
                        )
                    )
                    break
                host = min(candidates, key=lambda h: (load[h], h))
                load[host] += 1
                specs[host].append(_spec(request))
        placements: list[Placement] = []
        results = await asyncio.gather(
            *(self._start_on(host, batch) for host, batch in specs.items())
        )
        for placed, failed in results:
            placements += placed
            failures += failed
        return placements, failures

    async def _start_on(
        self, host: str, specs: list[ReplicaSpec]
    ) -> tuple[list[Placement], list[StartFailure]]:
        placed: list[Placement] = []
        failed: list[StartFailure] = []
        by_id = {s.instance_id: s for s in specs}
        for i in range(0, len(specs), BATCH):
            batch = specs[i : i + BATCH]
            timeout = 30 + max(s.startup_timeout for s in batch)
            try:
                result = await self._client.call(
                    "host",
                    f"{host}.start",
                    StartReplicas(replicas=batch),
                    StartResult,
                    timeout=timeout,
                )
            except CortexError as exc:
                log.warning("host did not take replicas", host=host, error=exc.message)
                failed += [
                    StartFailure(
                        agent_id=s.agent_id, agent_fault=False, error=f"host {host}: {exc.message}"
                    )
                    for s in batch
                ]
                continue
            placed += [
                Placement(agent_id=by_id[i].agent_id, instance_id=i, host_id=host)
                for i in result.started
                if i in by_id
            ]
            failed += [
                StartFailure(
                    agent_id=f.agent_id, error=f.error, agent_fault="is full" not in f.error
                )
                for f in result.failed
            ]
        return placed, failed

    async def stop(self, instances: Sequence[ObservedInstance], grace: float) -> None:
        by_host: dict[str, list[str]] = defaultdict(list)
        for instance in instances:
            by_host[instance.host_id].append(instance.id)

        async def stop_on(host: str, ids: list[str]) -> None:
            try:
                await self._client.call(
                    "host", f"{host}.stop", StopReplicas(instance_ids=ids, grace=grace), StopResult
                )
            except CortexError as exc:
                log.warning("host did not stop replicas", host=host, error=exc.message)

        await asyncio.gather(*(stop_on(h, ids) for h, ids in by_host.items()))

    async def release(self, wanted: set[str]) -> None:
        """Nothing to free: a host keeps nothing of an agent once its replicas are gone."""


def _spec(request: StartRequest) -> ReplicaSpec:
    agent, template = request.agent, request.template
    return ReplicaSpec(
        instance_id=new_instance_id(agent.name),
        agent_id=agent.id,
        agent_name=agent.name,
        template=template.name,
        template_version=template.version,
        handler=template.handler or "",
        config=request.config,
        concurrency=template.concurrency,
        max_deliveries=template.max_deliveries,
        startup_timeout=template.health.startup_timeout,
        stop_grace=template.health.stop_grace,
    )
