"""The registry service: its endpoints, and `build(settings)`, which wires the parts together."""

from __future__ import annotations

import time

from cortex.contracts.discovery import Discovery, Resolve
from cortex.contracts.registry import (
    HostRef,
    HostView,
    InstancePage,
    InstanceRef,
    InstanceView,
    ListHosts,
    ListInstances,
)
from cortex.contracts.state import (
    GetState,
    PatchState,
    PutState,
    StateHistory,
    StateView,
    StateWrite,
)
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.registry.clock import HealthClock
from cortex.registry.discovery import Resolver
from cortex.registry.domain import HealthPolicy
from cortex.registry.heartbeats import HeartbeatHandler, HeartbeatSubscription
from cortex.registry.live import LiveData
from cortex.registry.projections import HostsProjection
from cortex.registry.purges import PurgeListener
from cortex.registry.queries import RegistryQueries
from cortex.registry.state_projection import StateProjection
from cortex.registry.state_writer import StateWriter
from cortex.registry.writer import HostWriter

NAME = "registry"


def build(settings: Settings, *, forget_hosts_after: float = 600.0) -> ServiceRuntime:
    """The registry as a runtime ready to `start()`; `forget_hosts_after` is how long a gone
    host is kept before it is deregistered."""
    projection = HostsProjection()
    states = StateProjection()
    runtime = ServiceRuntime(
        NAME,
        settings,
        projections=[projection, states],
        description="CodeValdCortex registry: agent hosts, instances, health, discovery, state",
    )
    live = LiveData()
    writer = HostWriter(runtime, projection, live)
    clock = HealthClock(
        projection,
        live,
        writer,
        HealthPolicy(
            interval=settings.heartbeat_interval,
            unhealthy_after=settings.unhealthy_after,
            gone_after=settings.gone_after,
            forget_hosts_after=forget_hosts_after,
        ),
    )

    async def lead() -> None:
        clock.start()

    health = runtime.singleton("health", begin=lead, end=clock.stop)
    heartbeats = HeartbeatSubscription(
        HeartbeatHandler(projection, live, writer, deciding=lambda: health.held)
    )
    queries = RegistryQueries(projection, live)
    resolver = Resolver(runtime, projection, live)
    state_writer = StateWriter(runtime, states)
    purges = PurgeListener(runtime, state_writer)

    @runtime.on_start
    async def start(rt: ServiceRuntime) -> None:
        # The read model was just rebuilt from events; nothing says when its hosts were last
        # heard from, and taking them all for silent would declare the fleet dead.
        live.seed(projection.hosts().values(), time.monotonic())
        await heartbeats.start(rt.nc, rt.subjects)
        await purges.start()

    @runtime.on_stop
    async def stop(rt: ServiceRuntime) -> None:
        # The health clock stopped before these hooks (leases end first): silence while
        # stopping (the purge consumer's pull takes up to a second to end) is not taken for
        # the fleet going quiet.
        await heartbeats.stop()
        await purges.stop()

    @runtime.endpoint("host.list", ListHosts)
    async def list_hosts(query: ListHosts, ctx: Context) -> list[HostView]:
        return queries.list_hosts(query)

    @runtime.endpoint("host.get", HostRef)
    async def get_host(ref: HostRef, ctx: Context) -> HostView:
        return queries.get_host(ref.id)

    @runtime.endpoint("instance.list", ListInstances)
    async def list_instances(query: ListInstances, ctx: Context) -> InstancePage:
        return queries.list_instances(query)

    @runtime.endpoint("instance.get", InstanceRef)
    async def get_instance(ref: InstanceRef, ctx: Context) -> InstanceView:
        return queries.get_instance(ref.id)

    @runtime.endpoint("discovery.resolve", Resolve)
    async def resolve(req: Resolve, ctx: Context) -> Discovery:
        return await resolver.resolve(req)

    @runtime.endpoint("state.get", GetState)
    async def get_state(req: GetState, ctx: Context) -> StateView:
        state_writer.subject(req.agent_id)  # refuses an id no agent can have
        return states.current(req.agent_id)

    @runtime.endpoint("state.history", GetState)
    async def state_history(req: GetState, ctx: Context) -> StateHistory:
        state_writer.subject(req.agent_id)  # refuses an id no agent can have
        return StateHistory(agent_id=req.agent_id, versions=states.history(req.agent_id))

    @runtime.endpoint("state.put", PutState)
    async def put_state(cmd: PutState, ctx: Context) -> StateWrite:
        return await state_writer.put(cmd, ctx)

    @runtime.endpoint("state.patch", PatchState)
    async def patch_state(cmd: PatchState, ctx: Context) -> StateWrite:
        return await state_writer.patch(cmd, ctx)

    return runtime
