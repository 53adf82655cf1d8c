"""An agent whose start ends its host process (no exception to catch): the host notes what it
was starting, tries each of those alone after its restart, and refuses the one that ends it a
second time, as that agent's fault (services/cortex/host/start_journal.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from cortex.contracts.hosts import ReplicaSpec, StartReplicas, StartResult
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_buckets, ensure_streams
from cortex.kernel.errors import CortexError
from cortex.kernel.settings import Settings
from tests.support.host_process import HostProcess
from tests.support.sample_agents import EndsItsHost

HOST = "h1"


def spec(instance: str, agent: str, handler: str) -> ReplicaSpec:
    return ReplicaSpec(
        instance_id=instance,
        agent_id=agent,
        agent_name=agent,
        template=agent,
        template_version="1",
        handler=handler,
        config={},
        startup_timeout=5.0,
    )


GOOD = "cortex.sdk.builtin:Echo"
BAD = f"{EndsItsHost.__module__}:EndsItsHost"


@pytest.fixture
def host(make_settings: Callable[..., Settings]) -> Iterator[HostProcess]:
    process = HostProcess(make_settings(), HOST)
    yield process
    process.stop()


async def test_a_start_that_ends_its_host_twice_is_refused_as_the_agents_fault(
    make_settings: Callable[..., Settings], host: HostProcess
) -> None:
    settings = make_settings()
    nc = await connect(settings, "test", first_connect_timeout=10)
    subjects = settings.subjects()
    await ensure_streams(nc.jetstream(), subjects)
    await ensure_buckets(nc.jetstream(), subjects)
    client = ServiceClient(nc, subjects)

    async def start(*specs: ReplicaSpec, timeout: float = 20.0) -> StartResult:
        return await client.call(
            "host",
            f"{HOST}.start",
            StartReplicas(replicas=list(specs)),
            StartResult,
            timeout=timeout,
        )

    async def started_host() -> None:
        host.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                await start(timeout=1.0)
                return
            except CortexError:
                assert time.monotonic() < deadline, host.log.read_text()[-3000:]

    try:
        await started_host()
        # In one batch with a good agent: the host dies, and nobody can tell which one did it.
        with pytest.raises(CortexError):
            await start(spec("good-1", "good", GOOD), spec("bad-1", "bad", BAD), timeout=3.0)
        assert host.exited() == 9

        # Restarted, it tries each alone: the good one starts; the bad one ends it again.
        await started_host()
        with pytest.raises(CortexError):
            await start(spec("good-2", "good", GOOD), spec("bad-2", "bad", BAD), timeout=3.0)
        assert host.exited() == 9

        # From then on the bad one is refused at once, as its own fault; others start.
        await started_host()
        result = await start(spec("bad-3", "bad", BAD), spec("good-3", "good", GOOD))
        assert result.started == ["good-3"]
        (refused,) = result.failed
        assert (refused.instance_id, refused.agent_id) == ("bad-3", "bad")
        assert f"ended agent host {HOST} twice" in refused.error
    finally:
        await nc.close()
