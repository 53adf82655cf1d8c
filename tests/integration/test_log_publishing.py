"""Every process's log lines reach the stream CORTEX_LOGS, and logging never waits for NATS:
while NATS is away lines wait in a bounded queue, and what does not fit is dropped and
counted."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from prometheus_client import REGISTRY

from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.streams import ensure_streams
from cortex.kernel.logging import (
    LogPublisher,
    configure_logging,
    get_logger,
    publish_logs,
    stop_publishing_logs,
)
from cortex.kernel.settings import load_settings
from cortex.kernel.waiting import wait_event
from tests.support.nats import TEST_LOGS_BYTES, NatsServerProcess


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("cortex_logs_dropped_lines_total", {"reason": reason}) or 0.0


async def stored(js: JetStreamContext, subjects: Subjects, count: int) -> list[Msg]:
    """The first `count` lines of the stream (waiting up to 10 s for them)."""
    sub = await js.subscribe(f"{subjects.root}.log.>", ordered_consumer=True)
    try:
        return [await sub.next_msg(timeout=10) for _ in range(count)]
    finally:
        await sub.unsubscribe()


@pytest.fixture
def subjects(prefix: str) -> Subjects:
    return Subjects(prefix, logs_max_bytes=TEST_LOGS_BYTES)


@pytest.fixture
async def nc(nats_server: NatsServerProcess, subjects: Subjects) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    await ensure_streams(client.jetstream(), subjects)
    yield client
    await client.close()


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The process's logging as a service sets it up (console format, publishing), and the
    tests' own set-up again afterwards."""
    out = io.StringIO()
    configure_logging("lifecycle", "info", "console", out)
    yield out
    configure_logging("tests", "warning", "console", publish=False)


async def test_lines_of_structlog_and_of_libraries_reach_the_stream_as_json(
    nc: NATS, subjects: Subjects, console: io.StringIO
) -> None:
    log = get_logger()
    log.info("before NATS", step=1)  # queued until the process is connected
    publish_logs(nc, subjects)
    log.warning("agent created", agent_id="a1")
    logging.getLogger("uvicorn.error").error("a library's line")
    try:
        raise ValueError("bad input")
    except ValueError:
        log.exception("handler failed")
    await stop_publishing_logs(nc)

    lines = await stored(nc.jetstream(), subjects, 4)
    root = subjects.root
    assert [m.subject for m in lines] == [
        f"{root}.log.lifecycle.info",
        f"{root}.log.lifecycle.warning",
        f"{root}.log.lifecycle.error",
        f"{root}.log.lifecycle.error",
    ]
    first, created, library, failed = (msgspec.json.decode(m.data) for m in lines)
    assert (first["event"], first["step"], first["service"]) == ("before NATS", 1, "lifecycle")
    assert first["timestamp"].endswith("Z")
    assert (created["event"], created["agent_id"]) == ("agent created", "a1")
    assert library["event"] == "a library's line"
    # The terminal shows a readable traceback; the stream gets it structured.
    (trace,) = failed["exception"]
    assert (trace["exc_type"], trace["exc_value"]) == ("ValueError", "bad input")
    assert "handler failed" in console.getvalue()


async def test_while_nats_is_away_logging_goes_on_and_drops_what_the_queue_cannot_hold(
    tmp_path: Path,
) -> None:
    server = NatsServerProcess(tmp_path / "nats")
    server.start()
    settings = load_settings({}, nats_url=server.url, nats_prefix="away")
    subjects = settings.subjects()
    away = asyncio.Event()
    nc = await connect(settings, "logs-away", on_state=lambda up: None if up else away.set())
    try:
        await ensure_streams(nc.jetstream(), subjects)
        publisher = LogPublisher("host", capacity=5)
        publisher.attach(nc, subjects)
        server.kill()
        assert await wait_event(away, 10)
        full = dropped("queue_full")
        for n in range(8):  # returns at once each time: nothing waits for NATS
            publisher(None, "info", {"event": f"line {n}", "level": "info"})
        assert dropped("queue_full") - full == 3

        server.start()
        lines = await stored(nc.jetstream(), subjects, 5)
        assert [msgspec.json.decode(m.data)["event"] for m in lines] == [
            f"line {n}" for n in range(5)
        ]
        await publisher.detach(nc, timeout=2)
    finally:
        await nc.close()
        server.stop()


async def test_a_line_larger_than_nats_carries_is_dropped_and_counted(
    nc: NATS, subjects: Subjects
) -> None:
    publisher = LogPublisher("host")
    publisher.attach(nc, subjects)
    too_large = dropped("too_large")
    publisher(None, "info", {"event": "huge", "level": "info", "blob": "x" * nc.max_payload})
    publisher(None, "info", {"event": "after it", "level": "info"})
    await publisher.detach(nc, timeout=2)
    (line,) = await stored(nc.jetstream(), subjects, 1)
    assert msgspec.json.decode(line.data)["event"] == "after it"
    assert dropped("too_large") - too_large == 1
