"""Searching the log stream through the messaging service, over a real nats-server: lines are
published as every process publishes them (`cortex.log.<service>.<level>`, JSON)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from cortex.contracts.logs import LogPage
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import Invalid, Unavailable
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.messaging.service import build
from tests.integration.messaging.conftest import started


async def publish(
    nc: NATS, subjects: Subjects, service: str, level: str, event: str, **fields: Any
) -> None:
    line = {"event": event, "service": service, "level": level, "timestamp": _now(), **fields}
    await nc.publish(subjects.log(service, level), msgspec.json.encode(line))


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def search(client: ServiceClient, **query: Any) -> LogPage:
    return await client.call("messaging", "log.search", query, LogPage)


async def found(ask: Callable[[], Awaitable[LogPage]], count: int, timeout: float = 5.0) -> LogPage:
    """The page once it holds `count` lines (the index writes within milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            page = await ask()
            if len(page.items) >= count or time.monotonic() > deadline:
                return page
        except Unavailable:  # the replica has not opened its searches yet
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


async def stored(js: JetStreamContext, stream: str, last_seq: int) -> None:
    """Wait until the stream holds its `last_seq`th line: the server stores core publishes
    apart from API requests, so a purge sent right after them can overtake them."""
    deadline = time.monotonic() + 5.0
    while (await js.stream_info(stream)).state.last_seq < last_seq:
        assert time.monotonic() < deadline, f"{stream} never reached seq {last_seq}"
        await asyncio.sleep(0.01)


def events(page: LogPage) -> list[str]:
    return [str(item.line["event"]) for item in page.items]


@pytest.fixture
async def messaging(
    settings: Settings, client: ServiceClient, js: JetStreamContext
) -> AsyncIterator[ServiceRuntime]:
    runtime = await started(build(settings), client)
    yield runtime
    await runtime.stop()


async def test_every_filter_finds_its_lines_newest_first(
    messaging: ServiceRuntime, client: ServiceClient, nc: NATS, subjects: Subjects
) -> None:
    await publish(nc, subjects, "lifecycle", "info", "agent created", agent_id="a1")
    await publish(nc, subjects, "host", "warning", "replica slow", agent_id="a1", instance_id="i")
    await publish(nc, subjects, "workflow", "info", "step started", execution_id="e1")
    await publish(
        nc, subjects, "workflow", "error", "step failed", execution_id="e1", error="Boom: no"
    )
    await publish(nc, subjects, "gateway", "info", "request", correlation_id="c1")
    await publish(nc, subjects, "registry", "debug", "heartbeat", correlation_id="c1")
    everything = await found(lambda: search(client), 6)
    assert events(everything) == [
        "heartbeat",
        "request",
        "step failed",
        "step started",
        "replica slow",
        "agent created",
    ]
    seqs = [item.seq for item in everything.items]
    assert seqs == sorted(seqs, reverse=True)
    assert everything.last_seq == seqs[0]
    assert everything.next is None

    assert events(await search(client, agent_id="a1")) == ["replica slow", "agent created"]
    assert events(await search(client, execution_id="e1")) == ["step failed", "step started"]
    assert events(await search(client, correlation_id="c1")) == ["heartbeat", "request"]
    assert events(await search(client, service="workflow")) == ["step failed", "step started"]
    # A level is that level or a worse one.
    assert events(await search(client, level="warning")) == ["step failed", "replica slow"]
    assert events(await search(client, level="debug")) == events(everything)
    # Text: anywhere in the line's JSON, A to Z in either case.
    assert events(await search(client, text="boom")) == ["step failed"]
    assert events(await search(client, text="REPLICA")) == ["replica slow"]
    assert events(await search(client, text="nowhere to be found")) == []
    assert events(await search(client, service="workflow", level="error", text="step")) == [
        "step failed"
    ]
    assert events(await search(client, agent_id="a1", text="slow")) == ["replica slow"]
    assert events(await search(client, service="host", agent_id="a1")) == ["replica slow"]
    assert (await search(client, agent_id="nobody")).items == []


async def test_pages_go_back_in_time_and_time_ranges_bound_them(
    messaging: ServiceRuntime, client: ServiceClient, nc: NATS, subjects: Subjects
) -> None:
    for n in range(5):
        await publish(nc, subjects, "host", "info", f"line {n}")
        await nc.flush()
        await asyncio.sleep(0.002)  # each stored at a moment of its own
    await found(lambda: search(client), 5)
    first = await search(client, limit=2)
    assert events(first) == ["line 4", "line 3"]
    second = await search(client, limit=2, before=first.next)
    assert events(second) == ["line 2", "line 1"]
    last = await search(client, limit=2, before=second.next)
    assert (events(last), last.next) == (["line 0"], None)

    middle = second.items[0].stored_at
    assert events(await search(client, since=middle.isoformat())) == ["line 4", "line 3", "line 2"]
    assert events(await search(client, until=middle.isoformat())) == ["line 2", "line 1", "line 0"]
    with pytest.raises(Invalid):
        await search(client, before="yesterday")


async def test_two_replicas_give_the_same_pages(
    make_settings: Callable[..., Settings],
    tmp_path: Any,
    client: ServiceClient,
    nc: NATS,
    js: JetStreamContext,
    subjects: Subjects,
) -> None:
    """Each replica has its own index file; a search is answered as of the stream's last line,
    so whichever replica answers, the page is the same."""
    replicas = [
        await started(build(make_settings(data_dir=str(tmp_path / f"r{n}"))), client)
        for n in (1, 2)
    ]
    try:
        for n in range(30):
            await publish(nc, subjects, "host", "warning" if n % 3 else "info", f"line {n}")
        await stored(js, subjects.logs_stream, 30)
        # Asked of both at once, many times: every answer is the whole stream.
        pages = await asyncio.gather(*(search(client, level="warning") for _ in range(20)))
        assert {tuple(events(p)) for p in pages} == {
            tuple(f"line {n}" for n in reversed(range(30)) if n % 3)
        }
    finally:
        for runtime in replicas:
            await runtime.stop()


async def test_lines_the_stream_dropped_are_not_found_and_a_restart_keeps_the_rest(
    settings: Settings,
    client: ServiceClient,
    nc: NATS,
    js: JetStreamContext,
    subjects: Subjects,
) -> None:
    runtime = await started(build(settings), client)
    try:
        for n in range(3):
            await publish(nc, subjects, "host", "info", f"old {n}")
        await found(lambda: search(client), 3)
        await js.purge_stream(subjects.logs_stream)  # as max_age and max_bytes drop lines
        assert (await search(client)).items == []
        await publish(nc, subjects, "host", "info", "new 0")
        assert events(await found(lambda: search(client), 1)) == ["new 0"]
    finally:
        await runtime.stop()
    await publish(nc, subjects, "host", "info", "while it was away")
    runtime = await started(build(settings), client)
    try:
        page = await found(lambda: search(client), 2)
        assert events(page) == ["while it was away", "new 0"]
    finally:
        await runtime.stop()


async def test_a_replica_behind_a_stream_that_dropped_its_lines_still_answers(
    settings: Settings,
    client: ServiceClient,
    nc: NATS,
    js: JetStreamContext,
    subjects: Subjects,
) -> None:
    """Lines dropped before a replica read them are never read: it waits for none of them."""
    runtime = await started(build(settings), client)
    await publish(nc, subjects, "host", "info", "seen")
    await found(lambda: search(client), 1)
    await runtime.stop()
    for n in range(2):
        await publish(nc, subjects, "host", "info", f"never read {n}")
    await stored(js, subjects.logs_stream, 3)
    await js.purge_stream(subjects.logs_stream)
    runtime = await started(build(settings), client)
    try:
        page = await found(lambda: search(client), 0)
        assert (page.items, page.last_seq) == ([], 3)
    finally:
        await runtime.stop()
