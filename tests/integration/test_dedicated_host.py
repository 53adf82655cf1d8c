"""The host a `kubernetes` driver's pod runs: one replica, named after the host, from the files
and environment the driver's ConfigMap and Secret give it (services/cortex/host/dedicated.py).

The host runs as a real process on a real nats-server with a real registry; its inputs are
exactly what the driver's objects hold (kubernetes_objects.agent_config)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from cortex.contracts.registry import InstancePage, ListInstances
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_buckets, ensure_streams
from cortex.kernel.errors import CortexError
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.lifecycle.drivers import kubernetes_objects as objects
from cortex.registry.service import build as build_registry
from tests.support import lifecycle_records as records
from tests.support.host_process import HostProcess
from tests.support.ports import free_port

POD = "writer-7f3a9c2e"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(heartbeat_interval=0.25)


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[ServiceClient]:
    nc = await connect(settings, "test", first_connect_timeout=10)
    subjects = settings.subjects()
    await ensure_streams(nc.jetstream(), subjects)
    await ensure_buckets(nc.jetstream(), subjects)
    runtime: ServiceRuntime = build_registry(settings)
    await runtime.start()
    yield ServiceClient(nc, subjects, timeout=5)
    await runtime.stop()
    await nc.close()


def pod_inputs(tmp_path: Path, handler: str, config: dict[str, object]) -> dict[str, str]:
    """The environment a pod of the driver's would have, its ConfigMap's file on disk."""
    agent = records.agent(name="writer", config=config)
    template = records.template(name="writer", handler=handler)
    made = objects.agent_config(
        agent, template, config, [(("auth", "token"), "sk-live-7")], "agents"
    )
    spec = tmp_path / "agent" / objects.REPLICA_FILE
    spec.parent.mkdir()
    spec.write_text(made.config_map["data"][objects.REPLICA_FILE])
    assert made.secret is not None
    return {
        "CORTEX_HOST_REPLICA": str(spec),
        "CORTEX_HOST_SECRET_VALUES": made.secret["stringData"][objects.SECRET_KEY],
        "CORTEX_HOST_CAPACITY": "1",
    }


async def test_the_pods_host_runs_its_replica_with_its_secret_and_is_ready(
    settings: Settings, registry: ServiceClient, tmp_path: Path
) -> None:
    out = tmp_path / "config.json"
    config = {"out": str(out), "auth": {"token": "cortex-sealed:v1:AAAA"}, "model": "small"}
    admin = free_port()
    host = HostProcess(
        settings,
        POD,
        CORTEX_ADMIN_PORT=str(admin),
        **pod_inputs(tmp_path, "tests.support.sample_agents:WritesItsConfig", config),
    )
    host.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = await registry.call(
                    "registry", "instance.list", ListInstances(), InstancePage
                )
                mine = [i for i in page.items if i.host_id == POD]
                if mine and mine[0].state == "running":
                    break
            except CortexError:
                pass
            assert host.proc is not None
            assert host.proc.poll() is None, host.output()[-3000:]
            assert time.monotonic() < deadline, host.output()[-3000:]
            await asyncio.sleep(0.1)
        assert [i.id for i in mine] == [POD]
        assert json.loads(out.read_text()) == {
            "out": str(out),
            "auth": {"token": "sk-live-7"},
            "model": "small",
        }
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{admin}/ready")
        assert ready.status_code == 200, ready.text
    finally:
        host.stop()


async def test_a_replica_that_cannot_start_ends_its_host_saying_why(
    settings: Settings, registry: ServiceClient, tmp_path: Path
) -> None:
    config = {"auth": {"token": "cortex-sealed:v1:AAAA"}}
    host = HostProcess(
        settings, POD, **pod_inputs(tmp_path, "tests.support.sample_agents:BrokenStart", config)
    )
    host.start()
    try:
        assert host.exited(timeout=30) == 1
        assert f"replica {POD} did not start" in host.output()
        assert "missing API key" in host.output()
    finally:
        host.stop()


async def test_a_replica_file_that_cannot_be_read_ends_its_host_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    host = HostProcess(settings, POD, CORTEX_HOST_REPLICA=str(tmp_path / "missing.json"))
    host.start()
    try:
        assert host.exited(timeout=30) == 1
        assert f"CORTEX_HOST_REPLICA {tmp_path / 'missing.json'}" in host.output()
    finally:
        host.stop()
