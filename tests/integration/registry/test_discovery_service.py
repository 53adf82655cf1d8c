"""Discovery over a real nats-server: the real lifecycle service says who an agent is, heartbeats
published as an agent host publishes them say where it runs, `discovery.resolve` is asked
through `ServiceClient` as the SDK and the gateway ask it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from cortex.contracts.discovery import Discovery
from cortex.contracts.lifecycle import AgentRef, AgentView, CreateAgent
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import NotFound, Unavailable
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.lifecycle.service import build as build_lifecycle
from cortex.registry.service import build
from tests.integration.registry.test_registry_service import (
    INTERVAL,
    AgentHost,
    report,
    started,
)
from tests.support.polling import settled


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(heartbeat_interval=INTERVAL, unhealthy_after=2, gone_after=4)


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.effective_nats_url)
    yield client
    await client.close()


@pytest.fixture
def client(nc: NATS, settings: Settings) -> ServiceClient:
    return ServiceClient(nc, settings.subjects(), timeout=5)


@pytest.fixture
async def registry(settings: Settings, client: ServiceClient) -> AsyncIterator[ServiceRuntime]:
    runtime = await started(build(settings), client)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def lifecycle(settings: Settings, client: ServiceClient) -> AsyncIterator[ServiceRuntime]:
    runtime = build_lifecycle(settings)
    await runtime.start()
    deadline = time.monotonic() + 5
    while True:
        try:
            await client.call("lifecycle", "agent.get", AgentRef("nobody"), AgentView)
        except NotFound:
            break  # answering
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def greeter(
    registry: ServiceRuntime, lifecycle: ServiceRuntime, client: ServiceClient, nc: NATS
) -> AsyncIterator[tuple[AgentView, AgentHost, AgentHost]]:
    """An `echo` agent created through the lifecycle service, with three healthy replicas on
    two hosts (in flight: i1 3, i2 1, i3 1) and one failed replica."""
    agent = await client.call(
        "lifecycle", "agent.create", CreateAgent(name="greeter", template="echo"), AgentView
    )
    subjects = registry.subjects

    def replica(iid: str, **fields: Any) -> Any:
        return report(iid, agent=agent.id, agent_name=agent.name, **fields)

    h1, h2 = AgentHost(nc, subjects, "h1"), AgentHost(nc, subjects, "h2")
    h1.replicas = [replica("i1", inflight=3), replica("i3", inflight=1)]
    h2.replicas = [replica("i2", inflight=1), replica("i4", state="failed", last_error="boom")]
    h1.start()
    h2.start()
    await settled(
        lambda: resolve(client, agent.id),
        lambda d: [e.instance_id for e in d.endpoints] == ["i1", "i2", "i3"],
    )
    yield agent, h1, h2
    await h1.silence()
    await h2.silence()


async def resolve(client: ServiceClient, ref: str, pick: str | None = None) -> Discovery:
    body: dict[str, Any] = {"ref": ref, **({"pick": pick} if pick else {})}
    return await client.call("registry", "discovery.resolve", body, Discovery)


async def test_an_agent_resolves_by_name_and_by_id_to_its_healthy_instances(
    greeter: tuple[AgentView, AgentHost, AgentHost],
    client: ServiceClient,
    settings: Settings,
) -> None:
    agent, *_ = greeter
    subjects = settings.subjects()
    by_name = await resolve(client, "greeter")
    assert by_name == await resolve(client, agent.id)
    assert (by_name.agent_id, by_name.name, by_name.pool) == (agent.id, "greeter", None)
    assert by_name.status == agent.status
    assert by_name.inbox == subjects.agent_inbox(agent.id)
    assert by_name.picked is None
    # i4 failed: unhealthy, so not an endpoint.
    assert [(e.instance_id, e.host_id, e.health, e.inflight) for e in by_name.endpoints] == [
        ("i1", "h1", "healthy", 3),
        ("i2", "h2", "healthy", 1),
        ("i3", "h1", "healthy", 1),
    ]
    assert [e.direct for e in by_name.endpoints] == [
        subjects.instance("h1", "i1"),
        subjects.instance("h2", "i2"),
        subjects.instance("h1", "i3"),
    ]


async def test_round_robin_cycles_and_least_loaded_takes_the_fewest_in_flight(
    greeter: tuple[AgentView, AgentHost, AgentHost], client: ServiceClient
) -> None:
    agent, h1, _ = greeter
    picks = [(await resolve(client, "greeter", "round_robin")).picked for _ in range(7)]
    ids = [p.instance_id if p else None for p in picks]
    start = ids[0]
    assert start is not None
    cycle = ["i1", "i2", "i3"]
    offset = cycle.index(start)
    assert ids == [cycle[(offset + n) % 3] for n in range(7)]

    # i2 and i3 both have 1 in flight: the tie goes to the smaller id.
    least = await resolve(client, agent.id, "least_loaded")
    assert least.picked is not None
    assert (least.picked.instance_id, least.picked.inflight) == ("i2", 1)

    h1.replicas = [
        report("i1", agent=agent.id, agent_name=agent.name, inflight=0),
        report("i3", agent=agent.id, agent_name=agent.name, inflight=1),
    ]
    moved = await settled(
        lambda: resolve(client, agent.id, "least_loaded"),
        lambda d: d.picked is not None and d.picked.instance_id == "i1",
    )
    assert moved.picked is not None
    assert moved.picked.inflight == 0


async def test_pools_unknown_agents_and_agents_without_instances(
    greeter: tuple[AgentView, AgentHost, AgentHost], client: ServiceClient
) -> None:
    with pytest.raises(NotFound) as not_in_pool:
        await resolve(client, "greeter.blue")
    assert "pool 'blue'" in not_in_pool.value.message
    with pytest.raises(NotFound):
        await resolve(client, "nobody")

    idle = await client.call(
        "lifecycle", "agent.create", CreateAgent(name="idle", template="echo"), AgentView
    )
    found = await resolve(client, "idle")
    assert (found.agent_id, found.endpoints, found.picked) == (idle.id, [], None)
    for pick in ("round_robin", "least_loaded"):
        with pytest.raises(Unavailable) as caught:
            await resolve(client, "idle", pick)
        assert "has no healthy instance" in caught.value.message


async def test_with_the_lifecycle_down_an_id_with_healthy_instances_still_resolves(
    greeter: tuple[AgentView, AgentHost, AgentHost],
    lifecycle: ServiceRuntime,
    client: ServiceClient,
) -> None:
    agent, *_ = greeter
    await lifecycle.stop()

    alone = await resolve(client, agent.id, "least_loaded")
    assert (alone.agent_id, alone.name, alone.pool, alone.status) == (
        agent.id,
        "greeter",
        None,
        "unknown",
    )
    assert [e.instance_id for e in alone.endpoints] == ["i1", "i2", "i3"]
    assert alone.picked is not None
    assert alone.picked.instance_id == "i2"

    # A name, a pool or an id without healthy instances needs the lifecycle: its error stands.
    for ref in ("greeter", f"{agent.id}.blue", "someone-else"):
        with pytest.raises(Unavailable) as caught:
            await resolve(client, ref)
        assert "lifecycle" in caught.value.message
