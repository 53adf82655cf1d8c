"""The outbox relay publishes every appended event to JetStream exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from cortex.contracts import headers
from cortex.contracts.events import EventEnvelope
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.relay import CHECKPOINT_KEY, OutboxRelay
from cortex.kernel.bus.streams import ensure_streams
from cortex.kernel.settings import Settings
from cortex.kernel.store import EventStore, NewEvent, open_store
from tests.support.nats import TEST_LOGS_BYTES


@pytest.fixture
async def nc(make_settings: Callable[..., Settings]) -> AsyncIterator[NATS]:
    client = await nats.connect(make_settings().effective_nats_url)
    yield client
    await client.close()


async def stream_messages(nc: NATS, subjects: Subjects) -> list[nats.aio.msg.Msg]:
    js = nc.jetstream()
    info = await js.stream_info(subjects.events_stream)
    return [
        await js.get_msg(subjects.events_stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


async def test_events_appended_while_no_relay_ran_are_published_on_start_once(
    nc: NATS, prefix: str, tmp_path: object
) -> None:
    subjects = Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    store: EventStore = await open_store(f"sqlite:///{tmp_path}/store", "demo")
    try:
        # The service appended, then died before publishing: nothing is on the bus yet.
        events = [
            NewEvent(type="agent.created", stream_type="agent", data=msgspec.json.encode({"n": i}))
            for i in range(3)
        ]
        await store.append("agent-1", events, 0)
        assert await stream_messages(nc, subjects) == []

        relay = OutboxRelay(store, js, subjects, "demo")
        await relay.start()
        assert await relay.flush() == 3
        await relay.stop()
        published = await stream_messages(nc, subjects)
        assert [m.headers[headers.MSG_ID] for m in published] == [e.event_id for e in events]
        assert [m.subject for m in published] == [f"{prefix}.evt.demo.agent.created"] * 3
        envelope = msgspec.json.decode(published[0].data, type=EventEnvelope)
        assert (envelope.stream_id, envelope.version) == ("agent-1", 1)

        # Crash between publish and checkpoint: the next relay sends them again, JetStream
        # drops the duplicates, the stream still holds each event once.
        await store.put_meta(CHECKPOINT_KEY, b"0")
        again = OutboxRelay(store, js, subjects, "demo")
        await again.start()
        await again.flush()
        await again.stop()
        assert len(await stream_messages(nc, subjects)) == 3

        # A clean restart publishes nothing it already published.
        third = OutboxRelay(store, js, subjects, "demo")
        await third.start()
        assert await third.flush() == 0
        await third.stop()
    finally:
        await store.close()


async def test_a_kick_publishes_promptly(nc: NATS, prefix: str, tmp_path: object) -> None:
    subjects = Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    store = await open_store(f"sqlite:///{tmp_path}/store", "demo")
    relay = OutboxRelay(store, js, subjects, "demo", poll_interval=60)
    await relay.start()
    sub = await nc.subscribe(subjects.events_of("demo"))
    try:
        await store.append(
            "agent-1", [NewEvent(type="agent.created", stream_type="agent", data=b"{}")], 0
        )
        relay.kick()
        msg = await sub.next_msg(timeout=5)
        assert msg.subject == f"{prefix}.evt.demo.agent.created"
    finally:
        await sub.unsubscribe()
        await relay.stop()
        await store.close()


async def test_a_running_relay_saves_its_checkpoint_soon_without_stopping(
    nc: NATS, prefix: str, tmp_path: object
) -> None:
    # What a crash then republishes is bounded by how stale the saved checkpoint is.
    subjects = Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    store = await open_store(f"sqlite:///{tmp_path}/store", "demo")
    relay = OutboxRelay(store, js, subjects, "demo", poll_interval=0.2)
    await relay.start()
    try:
        for n in range(1, 4):
            await store.append(
                f"agent-{n}", [NewEvent(type="agent.created", stream_type="agent", data=b"{}")], 0
            )
            relay.kick()
        deadline = asyncio.get_running_loop().time() + 5
        while await store.get_meta(CHECKPOINT_KEY) != b"3":
            assert asyncio.get_running_loop().time() < deadline, "checkpoint not saved in 5 s"
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
        await store.close()
