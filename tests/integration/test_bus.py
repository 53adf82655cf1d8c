"""Streams are created idempotently; durable consumers ack, redeliver and resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.consumer import DurableConsumer, nak_delay
from cortex.kernel.bus.streams import StreamStorageError, ensure_streams
from cortex.kernel.settings import Settings
from tests.support.nats import TEST_LOGS_BYTES


@pytest.fixture
async def nc(make_settings: Callable[..., Settings]) -> AsyncIterator[NATS]:
    client = await nats.connect(make_settings().effective_nats_url)
    yield client
    await client.close()


async def test_streams_are_created_once_and_restored_when_changed(nc: NATS, prefix: str) -> None:
    subjects = Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    await ensure_streams(js, subjects)  # a second start changes nothing and does not fail
    info = await js.stream_info(subjects.events_stream)
    assert info.config.subjects == [f"{prefix}.evt.>"]
    assert info.config.duplicate_window == 120
    assert info.config.max_age == 7 * 86400

    # Someone shortened the dedupe window by hand: the next start puts it back.
    changed = StreamConfig.from_response(info.config.as_dict())
    changed.duplicate_window = 5
    await js.update_stream(changed)
    await ensure_streams(js, subjects)
    assert (await js.stream_info(subjects.events_stream)).config.duplicate_window == 120
    names = {s.config.name for s in await js.streams_info()}
    assert {spec.name for spec in subjects.streams()} <= names


async def test_a_durable_consumer_redelivers_failures_and_resumes_after_restart(
    nc: NATS, prefix: str
) -> None:
    subjects = Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    for i in range(10):
        await js.publish(subjects.topic("work"), str(i).encode())

    handled: list[str] = []
    failed_once: set[str] = set()
    done = asyncio.Event()

    async def handler(msg: Msg) -> None:
        body = msg.data.decode()
        if body == "3" and body not in failed_once:
            failed_once.add(body)
            raise RuntimeError("first attempt fails")
        handled.append(body)
        if len(set(handled)) >= 10:
            done.set()

    consumer = DurableConsumer(
        nc,
        stream=subjects.messages_stream,
        durable="worker",
        filter_subjects=[subjects.topic("work")],
        handler=handler,
    )
    await consumer.start()
    await asyncio.wait_for(done.wait(), timeout=10)
    await consumer.stop()
    assert sorted(handled, key=int) == [str(i) for i in range(10)]
    assert failed_once == {"3"}

    # While nobody consumes, more arrives; the same durable picks up only the new messages.
    for i in range(10, 15):
        await js.publish(subjects.topic("work"), str(i).encode())
    handled.clear()
    done.clear()

    async def second(msg: Msg) -> None:
        handled.append(msg.data.decode())
        if len(handled) >= 5:
            done.set()

    resumed = DurableConsumer(
        nc,
        stream=subjects.messages_stream,
        durable="worker",
        filter_subjects=[subjects.topic("work")],
        handler=second,
    )
    await resumed.start()
    await asyncio.wait_for(done.wait(), timeout=10)
    await asyncio.sleep(0.3)
    await resumed.stop()
    assert sorted(handled, key=int) == [str(i) for i in range(10, 15)]


def test_redelivery_backs_off() -> None:
    assert [nak_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert nak_delay(50) == 30.0


async def test_a_stream_jetstream_cannot_reserve_is_refused_naming_the_setting(
    nc: NATS, prefix: str
) -> None:
    """JetStream reserves a stream's size limit on its disk when the stream is created."""
    subjects = Subjects(prefix, logs_max_bytes=1 << 50)  # a petabyte: no disk here has it
    with pytest.raises(StreamStorageError, match="CORTEX_LOGS_MAX_BYTES") as refused:
        await ensure_streams(nc.jetstream(), subjects)
    assert subjects.logs_stream in str(refused.value)
