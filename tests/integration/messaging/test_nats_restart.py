"""The index keeps following its streams through a nats-server crash and restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import nats
import pytest
from nats.js.api import ObjectStoreConfig

from cortex.contracts.messaging import MessageRecord
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import PAYLOAD_RETENTION
from cortex.kernel.messages import send_to_agent
from cortex.kernel.settings import load_settings
from cortex.messaging.service import build
from tests.integration.messaging.conftest import Host, started
from tests.support.nats import NatsServerProcess

pytestmark = pytest.mark.slow

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float) -> T:
    """Poll through the outage: any error (no server, no responder, not found) is "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
            if check(value):
                return value
            last = value
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")


async def test_the_index_follows_on_after_nats_is_killed_and_restarted(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path / "nats")
    server.start()
    settings = load_settings(
        {},
        data_dir=str(tmp_path / "data"),
        nats_url=server.url,
        nats_prefix="restart",
        sqlite_synchronous="NORMAL",
        shutdown_grace=2.0,
    )
    subjects = settings.subjects()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    # The same workaround as in conftest.py (the kernel cannot create this bucket yet).
    await js.create_object_store(subjects.payload_bucket, ObjectStoreConfig(ttl=PAYLOAD_RETENTION))
    client = ServiceClient(nc, subjects, timeout=2)
    runtime = await started(build(settings), client)
    host = Host(nc, subjects)

    def get(msg_id: str) -> Callable[[], Awaitable[MessageRecord]]:
        return lambda: client.call("messaging", "message.get", {"id": msg_id}, MessageRecord)

    async def send() -> str:
        return await send_to_agent(js, subjects, "b", b"x", content_type="text/plain", sender="a")

    try:
        before = await send()
        await until(get(before), lambda r: True, timeout=10)

        server.kill()
        server.start()

        # Wait for JetStream to be back with short probes (a publish waits 5 s for its ack).
        probe = nc.jetstream(timeout=0.5)
        await until(lambda: probe.stream_info(subjects.messages_stream), lambda r: True, 15)
        after = await until(send, lambda r: True, timeout=15)
        await host.report("b", after, "acked")
        record = await until(get(after), lambda r: r.status == "acked", timeout=30)
        assert record.to == "b"
        assert (await get(before)()).status == "accepted"
    finally:
        await runtime.stop()
        await nc.close()
        server.stop()
