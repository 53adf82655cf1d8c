"""`cortex up` with CORTEX_NATS_CLUSTER=3 and CORTEX_REPLICAS=2: a three-node NATS cluster with
every stream on three servers, two processes of every service, and agents that answer, also
after a NATS node is killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cortex.contracts.subjects import SERVICES
from cortex.kernel.settings import load_settings
from tests.support.polling import eventually, until
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SUBJECTS = load_settings({}).subjects()
STREAMS = sorted(spec.name for spec in SUBJECTS.streams())


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("clustered"), CORTEX_NATS_CLUSTER="3", CORTEX_REPLICAS="2"
    ).start(timeout=180)
    yield stack
    stack.stop()


async def stream_leaders(stack: Stack) -> dict[str, tuple[int, str | None]]:
    """(replicas, leader) of each of the platform's streams, as JetStream reports them."""
    nc = await stack.nats_connect()
    try:
        js = nc.jetstream()
        out = {}
        for name in STREAMS:
            info = await js.stream_info(name)
            leader = info.cluster.leader if info.cluster else None
            out[name] = (info.config.num_replicas or 1, leader)
        return out
    finally:
        await nc.close()


def ask(api: httpx.Client, agent: str, payload: Any) -> httpx.Response:
    return api.post(
        f"/api/v1/agents/{agent}/messages", params={"wait": 5}, json={"payload": payload}
    )


def test_the_banner_names_the_cluster_and_the_replicas(clustered: Stack) -> None:
    banner = clustered.output[clustered.output.index("is up.") :]
    assert clustered.nats_url.replace(",", ", ") in banner
    assert "embedded 3-node nats-server cluster, JetStream" in banner
    assert "every stream with 3 replicas" in banner
    assert f"{', '.join(SERVICES)} (2 replicas each), gateway" in banner


def test_status_shows_two_instances_of_each_service_and_streams_on_three_servers(
    clustered: Stack,
) -> None:
    with clustered.client() as api:

        def counted() -> tuple[bool, tuple[dict[str, int | None], Any]]:
            status = api.get("/api/v1/status").json()
            instances = {s["name"]: len(s["instances"]) for s in status["services"]}
            seen = {name: instances.get(name) for name in SERVICES}
            return seen == dict.fromkeys(SERVICES, 2), (seen, status)

        # The platform is up once one replica of each service answers; a second replica may
        # still be reading its indexes for a moment after the banner.
        _, status = until(counted, "two instances of each service in the status", timeout=30)
    assert sorted(s["name"] for s in status["nats"]["streams"]) == STREAMS
    # The status lists the streams; how many copies JetStream keeps, it asks JetStream.
    leaders = asyncio.run(stream_leaders(clustered))
    assert {name: replicas for name, (replicas, _) in leaders.items()} == dict.fromkeys(STREAMS, 3)
    # The supervisor names each process, as its log file is named.
    for name in ("nats-1", "nats-2", "nats-3", *(f"{s}-{n}" for s in SERVICES for n in (1, 2))):
        assert clustered.pid_of(name) > 0
        assert (clustered.data_dir / "logs" / f"{name}.log").exists()


def test_an_echo_agent_answers_before_and_after_a_nats_node_dies(clustered: Stack) -> None:
    with clustered.client() as api:
        created = api.post("/api/v1/agents", json={"name": "echo-r", "template": "echo"})
        assert created.status_code == 201, created.text
        deployed = api.post("/api/v1/agents/echo-r/deploy", json={"replicas": 1})
        assert deployed.status_code == 202, deployed.text
        eventually(
            lambda: api.get("/api/v1/agents/echo-r").json()["status"] == "running",
            what="echo-r running",
        )
        reply = ask(api, "echo-r", {"hello": "cluster"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["reply"]["payload"] == {"hello": "cluster"}

        # The node leading the inbox stream: its loss costs the stream an election.
        _, leader = asyncio.run(stream_leaders(clustered))[SUBJECTS.messages_stream]
        assert leader is not None
        clustered.kill(f"nats-{leader.rsplit('-n', 1)[1]}")

        def answers() -> bool:
            again = ask(api, "echo-r", {"hello": "again"})
            return again.status_code == 200 and again.json()["reply"]["payload"] == {
                "hello": "again"
            }

        eventually(answers, timeout=60, what="a reply with a NATS node down")
