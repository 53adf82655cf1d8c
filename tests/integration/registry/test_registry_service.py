"""The registry over a real nats-server and a real SQLite store: heartbeats published exactly as
an agent host publishes them, answers read through `ServiceClient` as the gateway reads them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from cortex.contracts.registry import (
    Heartbeat,
    HostView,
    InstancePage,
    InstanceView,
    ReplicaReport,
)
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import NotFound, Unavailable
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.kernel.store import open_store
from cortex.kernel.waiting import cancel_and_wait
from cortex.registry.service import build
from tests.support.polling import settled

T = TypeVar("T")

INTERVAL = 0.2
UNHEALTHY_S = INTERVAL * 2
GONE_S = INTERVAL * 4
BOOTED = datetime(2026, 1, 1, tzinfo=UTC)


def report(iid: str, agent: str = "a1", **fields: Any) -> ReplicaReport:
    values: dict[str, Any] = {
        "instance_id": iid,
        "agent_id": agent,
        "agent_name": f"agent-{agent}",
        "state": "running",
        "started_at": BOOTED,
    }
    values.update(fields)
    return ReplicaReport(**values)


class AgentHost:
    """Publishes heartbeats as an agent host does: one beat per interval, split into chunks."""

    def __init__(
        self, nc: NATS, subjects: Subjects, host_id: str = "h1", boot_id: str = "boot-1"
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.host_id = host_id
        self.boot_id = boot_id
        self.started_at = BOOTED
        self.replicas: list[ReplicaReport] = []
        self.stopped: list[str] = []
        self.chunk_size = 1000
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        chunks = [
            self.replicas[i : i + self.chunk_size]
            for i in range(0, len(self.replicas), self.chunk_size)
        ] or [[]]
        for n, replicas in enumerate(chunks):
            beat = Heartbeat(
                host_id=self.host_id,
                boot_id=self.boot_id,
                hostname=f"{self.host_id}.example",
                pid=4242,
                started_at=self.started_at,
                sent_at=datetime.now(UTC),
                interval=INTERVAL,
                cpu_percent=12.5,
                rss_bytes=50_000_000,
                capacity=5000,
                replica_count=len(self.replicas),
                replicas=replicas,
                stopped=self.stopped,
                chunk=n,
                chunks=len(chunks),
            )
            await self.nc.publish(self.subjects.heartbeat(self.host_id), msgspec.json.encode(beat))
        await self.nc.flush()

    def start(self) -> None:
        """Keep beating in the background, every half interval."""

        async def loop() -> None:
            while True:
                await self.beat()
                await asyncio.sleep(INTERVAL / 2)

        self._task = asyncio.create_task(loop())

    async def silence(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None


async def gone_for_good(probe: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await probe()
        except NotFound:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still found after {timeout}s")


async def started(runtime: ServiceRuntime, client: ServiceClient) -> ServiceRuntime:
    """Start the registry and wait until it answers.

    Right after `start()` returns, a request from another connection now and then still gets
    "no responders" (about 3% of the time here, also with plain nats-py subscriptions, gone a
    millisecond later); the test waits that out rather than read it as a registry failure.
    """
    await runtime.start()
    deadline = time.monotonic() + 5
    while True:
        try:
            await client.call("registry", "host.list", {}, list[HostView])
            return runtime
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(heartbeat_interval=INTERVAL, unhealthy_after=2, gone_after=4)


@pytest.fixture
async def registry(settings: Settings, client: ServiceClient) -> AsyncIterator[ServiceRuntime]:
    runtime = await started(build(settings), client)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.effective_nats_url)
    yield client
    await client.close()


@pytest.fixture
def client(nc: NATS, settings: Settings) -> ServiceClient:
    return ServiceClient(nc, settings.subjects(), timeout=5)


@pytest.fixture
async def hosts(nc: NATS, settings: Settings) -> AsyncIterator[Callable[..., AgentHost]]:
    made: list[AgentHost] = []

    def make(host_id: str = "h1", boot_id: str = "boot-1") -> AgentHost:
        host = AgentHost(nc, settings.subjects(), host_id, boot_id)
        made.append(host)
        return host

    yield make
    for host in made:
        await host.silence()


def host_get(client: ServiceClient, host_id: str) -> Callable[[], Awaitable[HostView]]:
    return lambda: client.call("registry", "host.get", {"id": host_id}, HostView)


def instance_get(client: ServiceClient, iid: str) -> Callable[[], Awaitable[InstanceView]]:
    return lambda: client.call("registry", "instance.get", {"id": iid}, InstanceView)


async def list_instances(client: ServiceClient, **query: Any) -> InstancePage:
    return await client.call("registry", "instance.list", query, InstancePage)


def ids(items: Iterable[InstanceView]) -> list[str]:
    return [i.id for i in items]


async def test_a_heartbeat_registers_the_host_and_its_instances_healthy(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1 = hosts("h1")
    h1.replicas = [report("i1", handled=7, inflight=2), report("i2", agent="a2")]
    h1.start()
    h2 = hosts("h0")
    h2.start()

    host = await settled(host_get(client, "h1"), lambda h: h.replicas == 2)
    assert host.health == "healthy"
    assert (host.hostname, host.pid, host.capacity) == ("h1.example", 4242, 5000)
    assert (host.cpu_percent, host.rss_bytes) == (12.5, 50_000_000)
    assert host.last_seen is not None
    assert abs(host.last_seen - datetime.now(UTC)) < timedelta(seconds=2)

    i1 = await instance_get(client, "i1")()
    assert (i1.agent_id, i1.agent_name, i1.host_id) == ("a1", "agent-a1", "h1")
    assert (i1.health, i1.state, i1.handled, i1.inflight) == ("healthy", "running", 7, 2)
    assert i1.last_seen is not None

    listed = await settled(
        lambda: client.call("registry", "host.list", {}, list[HostView]), lambda h: len(h) == 2
    )
    assert [h.id for h in listed] == ["h0", "h1"]
    assert [h.replicas for h in listed] == [0, 2]
    with pytest.raises(NotFound):
        await host_get(client, "nope")()
    with pytest.raises(NotFound):
        await instance_get(client, "nope")()


async def test_a_silent_host_and_its_instances_go_unhealthy_then_gone_then_deregistered(
    settings: Settings, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    runtime = await started(build(settings, forget_hosts_after=1.5), client)
    try:
        h1 = hosts("h1")
        h1.replicas = [report("i1"), report("i2")]
        await h1.beat()
        await settled(host_get(client, "h1"), lambda h: h.replicas == 2)

        host_healths: list[str] = []
        instance_healths: list[str] = []

        async def watch() -> bool:
            host = await host_get(client, "h1")()
            if host.health not in host_healths:
                host_healths.append(host.health)
            with contextlib.suppress(NotFound):
                instance = await instance_get(client, "i1")()
                if instance.health not in instance_healths:
                    instance_healths.append(instance.health)
                return False
            return True

        await settled(watch, bool)
        assert host_healths == ["healthy", "unhealthy", "gone"]
        assert instance_healths == ["healthy", "unhealthy", "gone"]
        assert (await list_instances(client, host="h1")).items == []
        assert (await host_get(client, "h1")()).replicas == 0
        by_status = {
            status: [
                h.id
                for h in await client.call(
                    "registry", "host.list", {"status": status}, list[HostView]
                )
            ]
            for status in ("healthy", "gone")
        }
        assert by_status == {"healthy": [], "gone": ["h1"]}

        # A gone host is forgotten after a while; when it beats again it is simply new.
        await gone_for_good(host_get(client, "h1"))
        await h1.beat()
        back = await settled(host_get(client, "h1"), lambda h: h.replicas == 2)
        assert back.health == "healthy"
    finally:
        await runtime.stop()


async def test_a_failed_replica_is_unhealthy_with_its_error_until_it_recovers(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1 = hosts()
    h1.replicas = [report("i1"), report("i2", state="failed", last_error="KeyError: 'x'")]
    h1.start()
    failed = await settled(instance_get(client, "i2"), lambda i: i.health == "unhealthy")
    assert (failed.state, failed.last_error) == ("failed", "KeyError: 'x'")
    assert (await instance_get(client, "i1")()).health == "healthy"
    assert (await host_get(client, "h1")()).health == "healthy"

    h1.replicas = [report("i1"), report("i2", failures=1)]
    healed = await settled(instance_get(client, "i2"), lambda i: i.health == "healthy")
    assert (healed.state, healed.failures) == ("running", 1)


async def test_stopped_replicas_are_deregistered(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1 = hosts()
    h1.replicas = [report("i1"), report("i2")]
    h1.start()
    await settled(host_get(client, "h1"), lambda h: h.replicas == 2)
    h1.replicas = [report("i2")]
    h1.stopped = ["i1"]
    await gone_for_good(instance_get(client, "i1"))
    assert (await host_get(client, "h1")()).replicas == 1
    assert (await instance_get(client, "i2")()).health == "healthy"


async def test_a_new_boot_deregisters_the_instances_of_the_earlier_one(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1 = hosts(boot_id="boot-1")
    h1.replicas = [report("i1"), report("i2")]
    await h1.beat()
    await settled(host_get(client, "h1"), lambda h: h.replicas == 2)

    h1.boot_id = "boot-2"
    h1.started_at = BOOTED + timedelta(minutes=5)
    h1.replicas = [report("i3")]
    await h1.beat()
    host = await settled(host_get(client, "h1"), lambda h: h.replicas == 1)
    assert ids((await list_instances(client, host="h1")).items) == ["i3"]
    assert host.health == "healthy"
    for old in ("i1", "i2"):
        with pytest.raises(NotFound):
            await instance_get(client, old)()


async def test_instance_list_filters_and_pages(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1, h2 = hosts("h1"), hosts("h2")
    h1.replicas = [report(f"i0{n}") for n in range(1, 6)] + [
        report(f"i0{n}", agent="a2") for n in range(6, 9)
    ]
    h2.replicas = [report("i09"), report("i10", state="failed", last_error="boom")]
    h1.start()
    h2.start()
    await settled(lambda: list_instances(client), lambda p: len(p.items) == 10 and p.next is None)

    assert ids((await list_instances(client, agent="a2")).items) == ["i06", "i07", "i08"]
    assert ids((await list_instances(client, host="h2")).items) == ["i09", "i10"]
    assert ids((await list_instances(client, agent="a1", host="h2")).items) == ["i09", "i10"]
    unhealthy = await settled(
        lambda: list_instances(client, status="unhealthy"), lambda p: len(p.items) == 1
    )
    assert ids(unhealthy.items) == ["i10"]
    assert (await list_instances(client, agent="nobody")).items == []

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await list_instances(client, limit=3, **({"after": after} if after else {}))
        pages.append(ids(page.items))
        if page.next is None:
            break
        assert page.next == page.items[-1].id
        after = page.next
    assert pages == [["i01", "i02", "i03"], ["i04", "i05", "i06"], ["i07", "i08", "i09"], ["i10"]]

    exact = await list_instances(client, agent="a2", limit=3)
    assert exact.next is None
    first = await list_instances(client, agent="a1", limit=2)
    assert (ids(first.items), first.next) == (["i01", "i02"], "i02")
    rest = await list_instances(client, agent="a1", after="i02")
    assert ids(rest.items) == ["i03", "i04", "i05", "i09", "i10"]
    on_h1 = await list_instances(client, host="h1", after="i05", limit=2)
    assert (ids(on_h1.items), on_h1.next) == (["i06", "i07"], "i07")


class TestWithoutTheHealthClock:
    """Counting events: the health clock must not add its own. Beaten once, the test's host
    would turn unhealthy after 0.4 s of a slow run, and the second beat would then append
    the way back to healthy."""

    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings]) -> Settings:
        return make_settings(heartbeat_interval=INTERVAL, unhealthy_after=10_000, gone_after=20_000)

    async def test_a_beat_in_three_chunks_registers_all_3000_replicas_one_append_per_chunk(
        self,
        registry: ServiceRuntime,
        client: ServiceClient,
        hosts: Callable[..., AgentHost],
        settings: Settings,
    ) -> None:
        h1 = hosts()
        h1.replicas = [report(f"i{n:04}", agent=f"a{n % 7}") for n in range(3000)]
        await h1.beat()
        host = await settled(host_get(client, "h1"), lambda h: h.replicas == 3000, timeout=15)
        assert host.health == "healthy"
        page = await list_instances(client, limit=5000)
        assert len(page.items) == 3000
        assert {i.health for i in page.items} == {"healthy"}

        store = await open_store(settings.effective_store, "registry")
        try:
            events = await store.read("host-h1")
            registrations = [e for e in events if e.type == "instance.registered"]
            assert len(registrations) == 3000
            # Each decision is appended with a correlation id of its own: one per chunk.
            assert len({e.correlation_id for e in registrations}) == 3

            # The same beat again changes nothing: handled, and nothing appended.
            received = sample("cortex_registry_heartbeats_total")
            await h1.beat()

            async def handled() -> float:
                return sample("cortex_registry_heartbeats_total")

            await settled(handled, lambda n: n >= received + 3)
            assert len(await store.read("host-h1")) == len(events)
        finally:
            await store.close()


async def test_a_restarted_registry_keeps_its_fleet_and_does_not_declare_it_dead(
    settings: Settings, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    first = await started(build(settings), client)
    h1 = hosts()
    h1.replicas = [report("i1"), report("i2", state="failed", last_error="boom")]
    h1.start()
    try:
        await settled(instance_get(client, "i2"), lambda i: i.health == "unhealthy")
    finally:
        await h1.silence()
        await first.stop()

    # Silent for longer than it takes to turn unhealthy, while no registry is running.
    await asyncio.sleep(UNHEALTHY_S + 0.2)
    second = await started(build(settings), client)
    try:
        host = await host_get(client, "h1")()
        assert (host.health, host.replicas) == ("healthy", 2)
        i1 = await instance_get(client, "i1")()
        assert i1.health == "healthy"
        assert i1.last_seen is not None
        assert (await instance_get(client, "i2")()).health == "unhealthy"
        # The clock runs from the restart: silence still counts.
        await settled(host_get(client, "h1"), lambda h: h.health == "unhealthy")
    finally:
        await second.stop()


async def test_registry_metrics_are_on_the_admin_port(
    registry: ServiceRuntime, client: ServiceClient, hosts: Callable[..., AgentHost]
) -> None:
    h1 = hosts()
    h1.replicas = [report("i1")]
    h1.start()
    await settled(host_get(client, "h1"), lambda h: h.replicas == 1)

    async def scrape() -> str:
        async with httpx.AsyncClient(base_url=registry.admin_url or "") as http:
            return (await http.get("/metrics")).text

    # The gauges are counted at every tick of the health clock.
    text = await settled(
        scrape,
        lambda t: (
            'cortex_registry_instances{health="healthy"} 1.0' in t
            and 'cortex_registry_hosts{health="healthy"} 1.0' in t
        ),
    )
    assert 'cortex_registry_hosts{health="gone"} 0.0' in text
    assert "cortex_registry_heartbeats_total" in text
    assert "cortex_registry_heartbeat_duration_seconds_bucket" in text
