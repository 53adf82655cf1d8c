"""The platform's streams on a real three-node NATS cluster: three replicas of each, and a
publish and a consume that outlive the node holding the inbox stream's leader."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.streams import (
    StreamReplicasError,
    ensure_buckets,
    ensure_streams,
)
from cortex.kernel.settings import Settings, load_settings
from cortex.workflow.leases import bucket_name, open_leases
from tests.support.nats import TEST_LOGS_BYTES, NatsCluster, NatsServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    running = NatsCluster(tmp_path_factory.mktemp("cluster"))
    running.start()
    yield running
    running.stop()


def platform(cluster: NatsCluster, tmp_path: Path, replicas: int) -> tuple[Settings, Subjects]:
    """Settings of a platform of its own on the cluster, and its subjects with `replicas`."""
    settings = load_settings(
        {},
        data_dir=str(tmp_path),
        nats_url=cluster.url,
        nats_prefix="t" + secrets.token_hex(4),
        nats_replicas=replicas,
        logs_max_bytes=TEST_LOGS_BYTES,
    )
    subjects = Subjects(
        settings.nats_prefix,
        settings.inbox_partitions,
        settings.effective_logs_max_bytes,
        stream_replicas=replicas,
    )
    return settings, subjects


def stream_names(subjects: Subjects) -> list[str]:
    return [
        *(spec.name for spec in subjects.streams()),
        f"KV_{subjects.dedupe_bucket}",
        f"OBJ_{subjects.payload_bucket}",
        f"KV_{bucket_name(subjects)}",
    ]


async def replicas_of(js: JetStreamContext, stream: str) -> tuple[int, int]:
    """(configured replicas, servers holding a copy) of `stream`, once every copy is placed
    (a stream moved to more replicas gains its new peers over a moment)."""
    deadline = time.monotonic() + 10
    while True:
        info = await js.stream_info(stream)
        configured = info.config.num_replicas or 1
        cluster = info.cluster
        assert cluster is not None
        holders = {cluster.leader, *(peer.name for peer in cluster.replicas or [])} - {None}
        if len(holders) == configured or time.monotonic() > deadline:
            return configured, len(holders)
        await asyncio.sleep(0.1)


async def test_every_stream_and_bucket_gets_three_replicas(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    settings, subjects = platform(cluster, tmp_path, replicas=3)
    nc = await connect(settings, "test", first_connect_timeout=10)
    try:
        js = nc.jetstream()
        await ensure_streams(js, subjects)
        await ensure_buckets(js, subjects)
        await open_leases(js, subjects, "test", ttl=5)
        for stream in stream_names(subjects):
            assert await replicas_of(js, stream) == (3, 3), stream
    finally:
        await nc.close()


async def test_a_platform_started_on_one_replica_is_moved_to_three(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    settings, single = platform(cluster, tmp_path, replicas=1)
    triple = Subjects(
        single.root, single.inbox_partitions, single.logs_max_bytes, stream_replicas=3
    )
    nc = await connect(settings, "test", first_connect_timeout=10)
    try:
        js = nc.jetstream()
        for subjects in (single, triple):
            await ensure_streams(js, subjects)
            await ensure_buckets(js, subjects)
            await open_leases(js, subjects, "test", ttl=5)
            expected = subjects.stream_replicas
            for stream in stream_names(subjects):
                assert await replicas_of(js, stream) == (expected, expected), stream
    finally:
        await nc.close()


async def test_more_replicas_than_servers_is_refused_naming_the_setting(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    settings, subjects = platform(cluster, tmp_path, replicas=5)
    nc = await connect(settings, "test", first_connect_timeout=10)
    try:
        with pytest.raises(StreamReplicasError, match="CORTEX_NATS_REPLICAS"):
            await ensure_streams(nc.jetstream(), subjects)
        with pytest.raises(StreamReplicasError, match="CORTEX_NATS_REPLICAS"):
            await ensure_buckets(nc.jetstream(), subjects)
    finally:
        await nc.close()


async def connected_to(settings: Settings, node: NatsServerProcess) -> NATS:
    """A platform connection (every node in its pool) that is on `node` now. nats-py starts
    on a random server of the pool, so this connects until it lands there."""
    for _ in range(60):
        nc = await connect(settings, "test", first_connect_timeout=10)
        url = nc.connected_url
        if url is not None and url.port == node.port:
            return nc
        await nc.close()
    raise AssertionError(f"never connected to {node.name}")


async def test_publish_and_consume_outlive_the_node_holding_the_inbox_leader(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    settings, subjects = platform(cluster, tmp_path, replicas=3)
    setup = await connect(settings, "setup", first_connect_timeout=10)
    await ensure_streams(setup.jetstream(), subjects)
    info = await setup.jetstream().stream_info(subjects.messages_stream)
    await setup.close()
    assert info.cluster is not None
    assert info.cluster.leader
    leader = cluster.node(info.cluster.leader)

    nc = await connected_to(settings, leader)
    js = nc.jetstream(timeout=2)
    await js.add_consumer(
        subjects.messages_stream,
        ConsumerConfig(durable_name="inbox", ack_policy=AckPolicy.EXPLICIT),
    )
    inbox = await js.pull_subscribe_bind(durable="inbox", stream=subjects.messages_stream)
    before = [f"before-{n}".encode() for n in range(20)]
    for body in before:
        await js.publish(subjects.agent_inbox("a1"), body)

    leader.kill()
    try:
        # A publish during the election of a new leader may go unanswered; a client retries.
        deadline = time.monotonic() + 20
        while True:
            try:
                ack = await js.publish(subjects.agent_inbox("a1"), b"after")
                break
            except (NatsError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        assert ack.seq == len(before) + 1, "a message acknowledged before the kill was lost"
        assert nc.is_connected
        assert nc.connected_url is not None
        assert nc.connected_url.port != leader.port

        received: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(received) < len(before) + 1 and time.monotonic() < deadline:
            try:
                for msg in await inbox.fetch(50, timeout=1):
                    received.append(msg.data)
                    await msg.ack()
            except (NatsError, TimeoutError):
                continue
        assert received == [*before, b"after"]
        new_leader = (await js.stream_info(subjects.messages_stream)).cluster
        assert new_leader is not None
        assert new_leader.leader not in (None, leader.name)
    finally:
        await nc.close()
        leader.start()
