"""Two replicas of every service on one store: read models follow each other's writes, names
are claimed once, and every piece of work done once moves to the other replica when the one
doing it is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js.errors import KeyNotFoundError

from cortex.kernel.settings import load_settings
from cortex.workflow.leases import bucket_name
from tests.support.polling import eventually, finished_execution
from tests.support.stack import FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SUBJECTS = load_settings({}).subjects()


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("replicas"),
        CORTEX_REPLICAS="2",
        CORTEX_HOSTS="2",
        CORTEX_AGENT_PATH=str(REPO),
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


async def _holder(stack: Stack, bucket: str, key: str) -> str | None:
    nc = await stack.nats_connect()
    try:
        kv = await nc.jetstream().key_value(bucket)
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return (entry.value or b"").decode() or None
    finally:
        await nc.close()


def holder_pid(stack: Stack, work: str, bucket: str = SUBJECTS.leases_bucket) -> int | None:
    """The pid of the process holding the lease `work` (`<host>-<pid>-<random>`), if any."""
    holder = asyncio.run(_holder(stack, bucket, work))
    return int(holder.rsplit("-", 2)[1]) if holder else None


def kill_holder(stack: Stack, work: str) -> int:
    pid = eventually(lambda: holder_pid(stack, work), what=f"a holder of {work}")
    os.kill(pid, signal.SIGKILL)
    return int(pid)


def moved(stack: Stack, work: str, killed: int) -> int:
    """Until another process holds the lease: within a few seconds of the holder's death."""
    return int(
        eventually(
            lambda: (pid := holder_pid(stack, work)) not in (None, killed) and pid,
            timeout=15,
            what=f"{work} taken over",
        )
    )


def running(api: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    made = api.post("/api/v1/agents", json={"name": name, "deploy": True, **body})
    assert made.status_code == 201, made.text
    return dict(
        eventually(
            lambda: (
                (v := api.get(f"/api/v1/agents/{name}").json())["status"] == "running"
                and v["ready_replicas"] == v["replicas"]
                and v
            ),
            what=f"{name} running",
        )
    )


@pytest.fixture(params=["one replica", "two replicas"])
def platform(request: pytest.FixtureRequest) -> Stack:
    name = "stack" if request.param == "one replica" else "replicated"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_twenty_creates_of_one_name_make_one_agent(platform: Stack) -> None:
    name = f"contested-{time.monotonic_ns() % 100_000}"

    def create(_: int) -> int:
        with platform.client() as api:
            return api.post("/api/v1/agents", json={"name": name, "template": "echo"}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = sorted(pool.map(create, range(20)))
    assert codes == [201] + [409] * 19
    with platform.client() as api:
        named = [
            a for a in api.get("/api/v1/agents?limit=1000").json()["items"] if a["name"] == name
        ]
    assert len(named) == 1


def test_an_agent_is_found_at_once_whichever_replica_is_asked(replicated: Stack) -> None:
    with replicated.client() as api:
        for n in range(60):
            made = api.post("/api/v1/agents", json={"name": f"seen-{n}", "template": "echo"})
            assert made.status_code == 201, made.text
            # Either replica may answer; the one that did not create it must know it already.
            for _ in range(3):
                got = api.get(f"/api/v1/agents/{made.json()['id']}")
                assert got.status_code == 200, got.text
        listed = api.get("/api/v1/agents", params={"limit": 1000}).json()["items"]
        assert {f"seen-{n}" for n in range(60)} <= {a["name"] for a in listed}


def test_the_reconciler_moves_to_the_other_replica(replicated: Stack) -> None:
    killed = kill_holder(replicated, "lifecycle.reconciler")
    moved(replicated, "lifecycle.reconciler", killed)
    with replicated.client() as api:
        view = running(api, "after-reconciler", template="echo", replicas=2)
    assert view["ready_replicas"] == 2


def test_heartbeats_and_the_health_clock_move_to_the_other_registry(replicated: Stack) -> None:
    killed = kill_holder(replicated, "registry.health")
    moved(replicated, "registry.health", killed)
    with replicated.client() as api:
        view = running(api, "after-registry", template="echo", replicas=2)
        # The clock ticks on the new holder: a frozen host turns unhealthy.
        host = view["instances"][0]["host_id"]
        frozen = replicated.child_pid("cortex.host", CORTEX_HOST_NAME=host)
        os.kill(frozen, signal.SIGSTOP)
        try:
            eventually(
                lambda: (
                    {h["id"]: h["health"] for h in api.get("/api/v1/hosts").json()}[host]
                    != "healthy"
                ),
                what=f"{host} unhealthy",
            )
        finally:
            os.kill(frozen, signal.SIGCONT)
        eventually(
            lambda: (
                {h["id"]: h["health"] for h in api.get("/api/v1/hosts").json()}[host] == "healthy"
            ),
            what=f"{host} healthy again",
        )


def test_the_topic_fan_out_moves_to_the_other_messaging_replica(replicated: Stack) -> None:
    with replicated.client() as api:
        running(api, "fan-reader", template="echo")
        assert (
            api.post("/api/v1/agents/fan-reader/subscriptions", json={"topic": "relay"}).status_code
            == 201
        )
        killed = kill_holder(replicated, "messaging.fanout")
        sent = api.post("/api/v1/topics/relay/messages", json={"payload": {"n": 1}}).json()["id"]
        moved(replicated, "messaging.fanout", killed)
        reader = api.get("/api/v1/agents/fan-reader").json()["id"]
        eventually(
            lambda: api.get(f"/api/v1/messages/{sent}_{reader}").json().get("status") == "acked",
            what="the copy handled",
        )


async def _last_event(stack: Stack, subject: str) -> bytes | None:
    nc = await stack.nats_connect()
    try:
        try:
            msg = await nc.jetstream().get_last_msg(SUBJECTS.events_stream, subject)
        except Exception:
            return None
        return msg.data
    finally:
        await nc.close()


def test_the_relay_moves_to_the_other_replica(replicated: Stack) -> None:
    killed = kill_holder(replicated, "lifecycle.relay")
    with replicated.client() as api:
        made = api.post("/api/v1/agents", json={"name": "relayed", "template": "echo"})
        assert made.status_code == 201, made.text
    agent_id = made.json()["id"]
    moved(replicated, "lifecycle.relay", killed)
    subject = SUBJECTS.event("lifecycle", "agent.created")
    eventually(
        lambda: agent_id.encode() in (asyncio.run(_last_event(replicated, subject)) or b""),
        what="agent.created on the event stream",
    )


def test_a_running_execution_moves_to_the_other_workflow_replica(replicated: Stack) -> None:
    with replicated.client() as api:
        api.post(
            "/api/v1/templates",
            json={"name": "stepper", "handler": "tests.support.sample_agents:StepWorker"},
        )
        running(api, "stepper-1", template="stepper")
        template = {
            "name": "slow-two",
            "steps": [
                {"id": "one", "type": "agent", "agent": "stepper-1", "input": {"sleep": 3}},
                {"id": "two", "type": "agent", "agent": "stepper-1", "input": {"sleep": 0}},
            ],
        }
        assert api.post("/api/v1/workflow-templates", json=template).status_code in (200, 201)
        workflow = api.post("/api/v1/workflows", json={"template": "slow-two"}).json()
        execution = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()["id"]
        bucket = bucket_name(SUBJECTS)
        killed = eventually(lambda: holder_pid(replicated, execution, bucket), what="a runner")
        os.kill(killed, signal.SIGKILL)
        done = finished_execution(api, execution, timeout=60)
    assert done["status"] == "succeeded", done
