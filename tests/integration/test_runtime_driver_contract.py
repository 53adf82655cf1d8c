"""One contract for every runtime driver (services/cortex/lifecycle/drivers/port.py).

What the reconciler relies on, asked of each driver the same way: replicas it starts are
observed under the ids it gave; stopped ones leave; an agent whose code cannot start is reported
as its own fault, once; a start the runtime has no room for is not the agent's fault and says
why; released agents leave nothing behind.

Legs:
- `host`: a real registry (in this process) and a real agent host process on a real nats-server.
- `kubernetes`: a real cluster, where `CORTEX_TEST_KUBECONFIG` names its kubeconfig; skipped
  with that reason elsewhere, never faked. docs/kubernetes.md says what that cluster needs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from cortex.contracts.lifecycle import ResourceList, Resources, TemplateView
from cortex.contracts.registry import HostView
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_buckets, ensure_streams
from cortex.kernel.errors import CortexError
from cortex.kernel.secrets import Sealer
from cortex.kernel.settings import Settings
from cortex.lifecycle.drivers.host import HostDriver
from cortex.lifecycle.drivers.kubernetes import KubernetesDriver
from cortex.lifecycle.drivers.kubernetes_objects import PodSettings
from cortex.lifecycle.drivers.port import (
    Observation,
    ObservedInstance,
    RuntimeDriver,
    StartFailure,
    StartRequest,
)
from cortex.registry.service import build as build_registry
from tests.support import lifecycle_records as records
from tests.support.host_process import HostProcess

GOOD = "cortex.sdk.builtin:Echo"
BROKEN = "tests.support.sample_agents:BrokenStart"
HEARTBEAT = 0.25


@dataclass
class Leg:
    name: str
    driver: RuntimeDriver
    runtime: str
    too_big: Callable[[TemplateView], TemplateView]
    """A template the runtime has no room for, from a good one."""
    room: int
    """How many replicas of `too_big`'s template fit (the rest do not)."""
    patience: float
    """Seconds a replica may take to be running (an image pull, a pod scheduled)."""
    image: str = ""
    started: list[str] = field(default_factory=list)

    def request(self, handler: str, count: int = 1, **changes: Any) -> StartRequest:
        name = f"contract-{secrets.token_hex(3)}"
        template = records.template(
            name=name,
            runtime=self.runtime,
            handler=handler,
            image=self.image or None,
            health={"startup_timeout": 10, "stop_grace": 2},
            **changes,
        )
        agent = records.agent(
            id=f"agent-{secrets.token_hex(6)}", name=name, template=name, replicas=count
        )
        return StartRequest(agent=agent, template=template, count=count, config={}, config_at=None)


async def observed(
    driver: RuntimeDriver,
    check: Callable[[Observation], bool],
    timeout: float,
    what: str,
) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        seen = await driver.observe()
        if check(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last observation {seen!r}")
        await asyncio.sleep(0.1)


def of(seen: Observation, agent_id: str) -> list[ObservedInstance]:
    return [i for i in seen.instances if i.agent_id == agent_id and i.health != "gone"]


# --- the legs -----------------------------------------------------------------------------------


async def host_leg(settings: Settings) -> AsyncIterator[Leg]:
    nc = await connect(settings, "test", first_connect_timeout=10)
    subjects = settings.subjects()
    await ensure_streams(nc.jetstream(), subjects)
    await ensure_buckets(nc.jetstream(), subjects)
    client = ServiceClient(nc, subjects, timeout=5)
    registry = build_registry(settings)
    await registry.start()
    host = HostProcess(settings, "contract-host", CORTEX_HOST_CAPACITY="2")
    host.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                hosts = await client.call("registry", "host.list", {}, list[HostView])
                if any(h.id == host.name and h.health == "healthy" for h in hosts):
                    break
            except CortexError:
                pass
            assert time.monotonic() < deadline, host.output()[-3000:]
            await asyncio.sleep(0.1)
        yield Leg(
            name="host",
            driver=HostDriver(client),
            runtime="host",
            too_big=lambda t: t,
            room=2,
            patience=15,
        )
    finally:
        host.stop()
        await registry.stop()
        await nc.close()


async def kubernetes_leg() -> AsyncIterator[Leg]:
    kubeconfig = os.environ.get("CORTEX_TEST_KUBECONFIG", "")
    if not kubeconfig:
        pytest.skip(
            "CORTEX_TEST_KUBECONFIG does not name a cluster's kubeconfig: the kubernetes leg "
            "runs against a real cluster only (docs/kubernetes.md)"
        )
    namespace = os.environ.get("CORTEX_TEST_NAMESPACE", "cortex-test")
    driver = KubernetesDriver(PodSettings(namespace=namespace), Sealer(""), kubeconfig)
    await driver.open()
    try:
        yield Leg(
            name="kubernetes",
            driver=driver,
            runtime="kubernetes",
            # More CPU than any node has: the pod is made and stays unscheduled.
            too_big=lambda t: msgspec.structs.replace(
                t, resources=Resources(requests=ResourceList(cpu="4096"))
            ),
            room=0,
            patience=180,
            image=os.environ.get("CORTEX_TEST_AGENT_IMAGE", "codevald/cortex:dev"),
        )
    finally:
        await driver.close()


@pytest.fixture(params=["host", "kubernetes"])
async def leg(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> AsyncIterator[Leg]:
    if request.param == "host":
        legs = host_leg(make_settings(heartbeat_interval=HEARTBEAT))
    else:
        legs = kubernetes_leg()
    made = await anext(legs)
    yield made
    everything = await made.driver.observe()
    await made.driver.stop([i for i in everything.instances if i.id in made.started], 1.0)
    await made.driver.release(set())
    with pytest.raises(StopAsyncIteration):
        await anext(legs)


async def start(leg: Leg, request: StartRequest) -> tuple[list[str], list[StartFailure]]:
    seen = await leg.driver.observe()
    placements, failures = await leg.driver.start([request], seen, {})
    assert all(p.agent_id == request.agent.id for p in placements)
    leg.started += [p.instance_id for p in placements]
    return [p.instance_id for p in placements], failures


# --- the contract -------------------------------------------------------------------------------


async def test_started_replicas_are_observed_running_under_the_ids_start_gave(leg: Leg) -> None:
    request = leg.request(GOOD, count=2)
    ids, failures = await start(leg, request)
    assert failures == []
    assert len(set(ids)) == 2
    seen = await observed(
        leg.driver,
        lambda o: {i.id for i in of(o, request.agent.id) if i.state == "running"} == set(ids),
        leg.patience,
        "both replicas running",
    )
    assert all(i.health == "healthy" for i in of(seen, request.agent.id))


async def test_stopped_replicas_leave_and_a_released_agent_leaves_nothing(leg: Leg) -> None:
    request = leg.request(GOOD, count=2)
    ids, _ = await start(leg, request)
    seen = await observed(
        leg.driver,
        lambda o: len([i for i in of(o, request.agent.id) if i.state == "running"]) == 2,
        leg.patience,
        "both replicas running",
    )
    first = next(i for i in of(seen, request.agent.id) if i.id == ids[0])
    await leg.driver.stop([first], 2.0)
    await observed(
        leg.driver,
        lambda o: [i.id for i in of(o, request.agent.id)] == [ids[1]],
        30,
        "only the replica not stopped is left",
    )
    await leg.driver.stop(of(await leg.driver.observe(), request.agent.id), 2.0)
    await observed(leg.driver, lambda o: not of(o, request.agent.id), 30, "no replica left")
    await leg.driver.release(set())
    seen = await leg.driver.observe()
    assert not [i for i in seen.instances if i.agent_id == request.agent.id]


async def test_an_agent_whose_code_cannot_start_is_its_own_fault_reported_once(leg: Leg) -> None:
    request = leg.request(BROKEN)
    _, failures = await start(leg, request)
    deadline = time.monotonic() + leg.patience
    while time.monotonic() < deadline and not failures:
        failures += (await leg.driver.observe()).failures
        await asyncio.sleep(0.2)
    # Reported once: later observations do not report it again.
    for _ in range(3):
        failures += (await leg.driver.observe()).failures
    mine = [f for f in failures if f.agent_id == request.agent.id]
    assert len(mine) == 1, failures
    assert mine[0].agent_fault is True
    assert "missing API key" in mine[0].error
    seen = await leg.driver.observe()
    assert not [i for i in of(seen, request.agent.id) if i.state == "running"]


async def test_a_start_without_room_is_not_the_agents_fault_and_says_why(leg: Leg) -> None:
    request = leg.request(GOOD, count=leg.room + 1)
    request = StartRequest(
        agent=request.agent,
        template=leg.too_big(request.template),
        count=request.count,
        config={},
        config_at=None,
    )
    ids, failures = await start(leg, request)
    why = [f for f in failures if f.agent_id == request.agent.id]
    assert not [f for f in why if f.agent_fault]
    if not why:
        # A runtime that places first and schedules later says it in its observation.
        seen = await observed(
            leg.driver, lambda o: request.agent.id in o.notes, 60, "a note on the agent"
        )
        reason = seen.notes[request.agent.id]
    else:
        reason = why[0].error
    assert "room" in reason or "scheduled" in reason, reason
    assert len(ids) == leg.room
