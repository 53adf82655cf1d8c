"""Message status and history: messages published as the platform publishes them, reports
published as agent hosts publish them, answers read through `ServiceClient`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from nats.js.client import JetStreamContext

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeadLetterPage, MessagePage, MessageRecord, TopicView
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_streams
from cortex.kernel.errors import NotFound
from cortex.kernel.messages import message_headers, send_to_agent
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.messaging.service import build
from tests.integration.messaging.conftest import Host, started, stored
from tests.support.polling import settled


def get(client: ServiceClient, msg_id: str) -> Callable[[], Awaitable[MessageRecord]]:
    return lambda: client.call("messaging", "message.get", {"id": msg_id}, MessageRecord)


async def page(client: ServiceClient, agent_id: str, **query: object) -> MessagePage:
    return await client.call(
        "messaging", "message.list", {"agent_id": agent_id, **query}, MessagePage
    )


async def send(js: JetStreamContext, subjects: Subjects, to: str, text: str, sender: str) -> str:
    return await send_to_agent(
        js,
        subjects,
        to,
        text.encode(),
        content_type="text/plain",
        sender=sender,
        extra_headers={"X-Trace": "t"},
    )


async def test_a_message_goes_accepted_delivered_acked_and_failures_keep_their_error(
    messaging: ServiceRuntime,
    client: ServiceClient,
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
) -> None:
    msg_id = await send(js, subjects, "b1", "hello", "a1")
    record = await settled(get(client, msg_id), lambda r: True)
    assert (record.kind, record.from_, record.to, record.status) == (
        "direct",
        "a1",
        "b1",
        "accepted",
    )
    assert (record.content_type, record.size, record.deliveries) == ("text/plain", 5, 0)

    await host.report("b1", msg_id, "delivered", 1)
    delivered = await settled(get(client, msg_id), lambda r: r.status == "delivered")
    assert delivered.deliveries == 1
    assert delivered.delivered_at is not None

    await host.report("b1", msg_id, "failed", 1, "KeyError: 'x'")
    await host.report("b1", msg_id, "delivered", 2)
    failed = await settled(get(client, msg_id), lambda r: r.deliveries == 2)
    assert (failed.status, failed.last_error) == ("delivered", "KeyError: 'x'")

    await host.report("b1", msg_id, "acked", 2)
    acked = await settled(get(client, msg_id), lambda r: r.status == "acked")
    assert acked.acked_at is not None
    assert acked.deliveries == 2
    # a late report of an earlier delivery does not move it back
    await host.report("b1", msg_id, "delivered", 1)
    other = await send(js, subjects, "b1", "later", "a1")
    await host.report("b1", other, "delivered", 1)  # read after the late one: status is ordered
    await settled(get(client, other), lambda r: r.status == "delivered")
    assert (await get(client, msg_id)()).status == "acked"


async def test_an_agents_messages_newest_first_in_and_out_paged(
    messaging: ServiceRuntime, client: ServiceClient, js: JetStreamContext, subjects: Subjects
) -> None:
    to_a = [await send(js, subjects, "a", f"in{n}", "x") for n in range(3)]
    from_a = [await send(js, subjects, "y", f"out{n}", "a") for n in range(2)]
    await send(js, subjects, "y", "unrelated", "x")
    both = await settled(lambda: page(client, "a", direction="both"), lambda p: len(p.items) == 5)
    assert [r.id for r in both.items] == [*reversed(from_a), *reversed(to_a)]
    assert [r.id for r in (await page(client, "a")).items] == list(reversed(to_a))
    assert [r.id for r in (await page(client, "a", direction="out")).items] == list(
        reversed(from_a)
    )
    first = await page(client, "a", direction="both", limit=2)
    assert ([r.id for r in first.items], first.next) == (list(reversed(from_a)), from_a[0])
    rest = await page(client, "a", direction="both", limit=2, before=first.next)
    assert [r.id for r in rest.items] == [to_a[2], to_a[1]]
    assert rest.next == to_a[1]
    assert (await page(client, "nobody")).items == []


async def test_an_unknown_message_is_not_found(
    messaging: ServiceRuntime, client: ServiceClient
) -> None:
    with pytest.raises(NotFound):
        await client.call("messaging", "message.get", {"id": "nope"}, MessageRecord)


async def test_a_restart_rebuilds_the_same_records(
    settings: Settings,
    client: ServiceClient,
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
) -> None:
    runtime = await started(build(settings), client)
    try:
        await client.call(
            "messaging", "subscription.add", {"agent_id": "b", "topic": "news"}, object
        )
        ids = [await send(js, subjects, "b", f"m{n}", "a") for n in range(4)]
        await host.report("b", ids[0], "delivered")
        await host.report("b", ids[0], "acked")
        await host.report("b", ids[1], "failed", 1, "boom")
        topic_headers = message_headers(
            msg_id="t1", sender="a", to="topic:news", content_type="application/json"
        )
        await js.publish(subjects.topic("news"), b"{}", headers={**topic_headers, m.TOPIC: "news"})
        inbox = await stored(js, subjects.messages_stream, subjects.stored_inbox("b"))
        await host.dead_letter("b", inbox[2], reason="gave up", last_error="boom")
        await settled(get(client, ids[0]), lambda r: r.status == "acked")
        await settled(get(client, ids[1]), lambda r: r.last_error == "boom")
        await settled(get(client, ids[2]), lambda r: r.status == "dead_lettered")
        await settled(get(client, "t1"), lambda r: r.copies == 1)
        before = [await get(client, i)() for i in [*ids, "t1", "t1_b"]]
        pages = [await page(client, agent, direction="both") for agent in ("a", "b")]
        dead = await client.call("messaging", "dlq.list", {}, DeadLetterPage)
        assert dead.total == 1
    finally:
        await runtime.stop()

    again = await started(build(settings), client)
    try:
        assert [await get(client, i)() for i in [*ids, "t1", "t1_b"]] == before
        assert [await page(client, agent, direction="both") for agent in ("a", "b")] == pages
        assert await client.call("messaging", "dlq.list", {}, DeadLetterPage) == dead
        subscribed = await client.call("messaging", "topic.list", {}, list[TopicView])
        assert [(t.topic, t.subscribers) for t in subscribed] == [("news", 1)]
        assert again.readiness()["index"]
    finally:
        await again.stop()


async def test_a_small_bound_keeps_the_newest(
    settings: Settings, client: ServiceClient, js: JetStreamContext, subjects: Subjects
) -> None:
    await ensure_streams(js, subjects)  # what any platform process does at start
    ids = [await send(js, subjects, "b", f"m{n}", "a") for n in range(5)]
    runtime = await started(build(settings, max_indexed=3), client)
    try:
        assert [r.id for r in (await page(client, "b")).items] == list(reversed(ids[2:]))
        newer = await send(js, subjects, "b", "m5", "a")
        latest = await settled(lambda: page(client, "b"), lambda p: p.items[0].id == newer)
        assert [r.id for r in latest.items] == [newer, ids[4], ids[3]]
    finally:
        await runtime.stop()
