"""The registry service: its endpoints, and `build(settings)`, which wires the parts together."""

from __future__ import annotations

import time

from cortex.contracts.registry import (
    HostRef,
    HostView,
    InstancePage,
    InstanceRef,
    InstanceView,
    ListHosts,
    ListInstances,
)
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.registry.clock import HealthClock
from cortex.registry.domain import HealthPolicy
from cortex.registry.heartbeats import HeartbeatHandler, HeartbeatSubscription
from cortex.registry.live import LiveData
from cortex.registry.projections import HostsProjection
from cortex.registry.queries import RegistryQueries
from cortex.registry.writer import HostWriter

NAME = "registry"


def build(settings: Settings, *, forget_hosts_after: float = 600.0) -> ServiceRuntime:
    """The registry as a runtime ready to `start()`; `forget_hosts_after` is how long a gone
    host is kept before it is deregistered."""
    projection = HostsProjection()
    runtime = ServiceRuntime(
        NAME,
        settings,
        projections=[projection],
        description="CodeValdCortex registry: agent hosts, instances and their health",
    )
    live = LiveData()
    writer = HostWriter(runtime, projection, live)
    heartbeats = HeartbeatSubscription(HeartbeatHandler(projection, live, writer))
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
    queries = RegistryQueries(projection, live)

    @runtime.on_start
    async def start(rt: ServiceRuntime) -> None:
        # The read model was just rebuilt from events; nothing says when its hosts were last
        # heard from, and taking them all for silent would declare the fleet dead.
        live.seed(projection.hosts().values(), time.monotonic())
        await heartbeats.start(rt.nc, rt.subjects)
        clock.start()

    @runtime.on_stop
    async def stop(rt: ServiceRuntime) -> None:
        await heartbeats.stop()
        await clock.stop()

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

    return runtime
