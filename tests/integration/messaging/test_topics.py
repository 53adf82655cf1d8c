"""Subscriptions, template topics from lifecycle events, and the fan-out of topic messages into
subscribers' inboxes, read back from the stream as an agent host would find them."""

from __future__ import annotations

import msgspec
import pytest
from nats.js.client import JetStreamContext
from prometheus_client import REGISTRY

from cortex.contracts import messages as m
from cortex.contracts.events import EventEnvelope
from cortex.contracts.lifecycle import AgentCreated, AgentPurged
from cortex.contracts.messaging import MessageRecord, SubscriptionView, TopicView
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import Invalid, NotFound
from cortex.kernel.ids import new_id, utcnow
from cortex.kernel.messages import message_headers
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.messaging.fanout import DURABLE
from cortex.messaging.service import build
from tests.integration.messaging.conftest import started, stored
from tests.support.polling import settled


async def subscribe(client: ServiceClient, agent_id: str, topic: str) -> SubscriptionView:
    body = {"agent_id": agent_id, "topic": topic}
    return await client.call("messaging", "subscription.add", body, SubscriptionView)


async def subscriptions(client: ServiceClient, **query: str) -> list[SubscriptionView]:
    return await client.call("messaging", "subscription.list", query, list[SubscriptionView])


def pairs(views: list[SubscriptionView]) -> list[tuple[str, str, str]]:
    return [(v.agent_id, v.topic, v.source) for v in views]


async def publish_event(
    js: JetStreamContext, subjects: Subjects, agent_id: str, event: AgentCreated | AgentPurged
) -> None:
    """As the lifecycle service's outbox relay publishes it."""
    envelope = EventEnvelope(
        event_id=new_id(),
        stream_id=f"agent-{agent_id}",
        stream_type="agent",
        version=1,
        position=1,
        type=type(event).TYPE,
        data=msgspec.Raw(msgspec.json.encode(event)),
        occurred_at=utcnow(),
        actor="tester",
    )
    await js.publish(
        subjects.event("lifecycle", envelope.type),
        msgspec.json.encode(envelope),
        headers={"Nats-Msg-Id": envelope.event_id},
    )


async def publish_topic(
    js: JetStreamContext, subjects: Subjects, topic: str, payload: bytes, msg_id: str
) -> None:
    headers = message_headers(
        msg_id=msg_id,
        sender="publisher",
        to=f"topic:{topic}",
        content_type="application/json",
        extra={"X-Trace": "t-1"},
    )
    await js.publish(subjects.topic(topic), payload, headers={**headers, m.TOPIC: topic})


async def test_subscribe_list_and_unsubscribe(
    messaging: ServiceRuntime, client: ServiceClient
) -> None:
    view = await subscribe(client, "a1", "orders.created")
    assert (view.agent_id, view.topic, view.source) == ("a1", "orders.created", "runtime")
    again = await subscribe(client, "a1", "orders.created")
    assert again == view  # a no-op: same subscription, same time
    await subscribe(client, "a1", "billing")
    await subscribe(client, "a2", "orders.created")

    assert pairs(await subscriptions(client, agent_id="a1")) == [
        ("a1", "billing", "runtime"),
        ("a1", "orders.created", "runtime"),
    ]
    assert [v.agent_id for v in await subscriptions(client, topic="orders.created")] == [
        "a1",
        "a2",
    ]
    assert len(await subscriptions(client)) == 3
    topics = await client.call("messaging", "topic.list", {}, list[TopicView])
    assert [(t.topic, t.subscribers) for t in topics] == [("billing", 1), ("orders.created", 2)]

    with pytest.raises(Invalid) as caught:
        await subscribe(client, "a1", "orders.*")
    assert [v.field for v in caught.value.violations] == ["$.topic"]

    await client.call(
        "messaging", "subscription.remove", {"agent_id": "a1", "topic": "billing"}, object
    )
    assert pairs(await subscriptions(client, agent_id="a1")) == [
        ("a1", "orders.created", "runtime")
    ]
    with pytest.raises(NotFound):
        await client.call(
            "messaging", "subscription.remove", {"agent_id": "a1", "topic": "billing"}, object
        )
    topics = await client.call("messaging", "topic.list", {}, list[TopicView])
    assert [t.topic for t in topics] == ["orders.created"]


async def test_template_topics_on_creation_and_nothing_left_after_a_purge(
    messaging: ServiceRuntime, client: ServiceClient, js: JetStreamContext, subjects: Subjects
) -> None:
    created = AgentCreated(
        agent_id="a9",
        name="watcher",
        template="echo",
        template_version="1",
        config={},
        replicas=1,
        topics=["alerts", "alerts.high", "not a topic"],
    )
    await publish_event(js, subjects, "a9", created)
    listed = await settled(lambda: subscriptions(client, agent_id="a9"), lambda s: len(s) == 2)
    assert pairs(listed) == [("a9", "alerts", "template"), ("a9", "alerts.high", "template")]
    await subscribe(client, "a9", "extra")

    await publish_event(js, subjects, "a9", AgentPurged())
    await settled(lambda: subscriptions(client, agent_id="a9"), lambda s: s == [])
    assert await client.call("messaging", "topic.list", {}, list[TopicView]) == []


async def test_a_topic_message_is_copied_once_into_each_subscribers_inbox(
    settings: Settings, client: ServiceClient, js: JetStreamContext, subjects: Subjects
) -> None:
    copies_before = REGISTRY.get_sample_value("cortex_messaging_fanout_copies_total") or 0.0
    runtime = await started(build(settings), client)
    try:
        await subscribe(client, "s1", "news")
        await subscribe(client, "s2", "news")
        await subscribe(client, "s3", "weather")
        await publish_topic(js, subjects, "news", b'{"headline": "hi"}', "t1")
        await publish_topic(js, subjects, "sports", b"{}", "t2")  # nobody subscribed

        topic = await settled(
            lambda: client.call("messaging", "message.get", {"id": "t1"}, MessageRecord),
            lambda r: r.copies == 2,
        )
        assert (topic.kind, topic.topic, topic.to, topic.from_) == (
            "topic",
            "news",
            None,
            "publisher",
        )
        lonely = await client.call("messaging", "message.get", {"id": "t2"}, MessageRecord)
        assert (lonely.kind, lonely.copies) == ("topic", 0)
        copy = await client.call("messaging", "message.get", {"id": "t1_s1"}, MessageRecord)
        assert (copy.kind, copy.origin_id, copy.to, copy.topic) == ("copy", "t1", "s1", "news")

        for agent_id in ("s1", "s2"):
            inbox = await stored(js, subjects.messages_stream, subjects.stored_inbox(agent_id))
            assert len(inbox) == 1
            headers = inbox[0].headers or {}
            assert inbox[0].data == b'{"headline": "hi"}'
            assert headers[m.MSG_ID] == f"t1_{agent_id}"
            assert (headers[m.ORIGIN_ID], headers[m.TOPIC], headers[m.TO]) == (
                "t1",
                "news",
                agent_id,
            )
            assert (headers[m.FROM], headers["X-Trace"]) == ("publisher", "t-1")
        assert await stored(js, subjects.messages_stream, subjects.stored_inbox("s3")) == []

        # every topic message acked, including the one nobody wanted
        consumer = await js.consumer_info(subjects.messages_stream, DURABLE)
        assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0)
        copies = REGISTRY.get_sample_value("cortex_messaging_fanout_copies_total") or 0.0
        assert copies - copies_before == 2
    finally:
        await runtime.stop()

    # A crash before the acks were recorded: the fan-out runs again from the start; the copies
    # carry the same ids, so JetStream drops them and each inbox still holds one.
    await js.delete_consumer(subjects.messages_stream, DURABLE)
    runtime = await started(build(settings), client)
    try:
        await settled(
            lambda: js.consumer_info(subjects.messages_stream, DURABLE),
            lambda c: c.num_pending == 0 and c.num_ack_pending == 0 and c.delivered.stream_seq > 0,
        )
        for agent_id in ("s1", "s2"):
            inbox = await stored(js, subjects.messages_stream, subjects.stored_inbox(agent_id))
            assert [(i.headers or {})[m.MSG_ID] for i in inbox] == [f"t1_{agent_id}"]
        topic = await client.call("messaging", "message.get", {"id": "t1"}, MessageRecord)
        assert topic.copies == 2
    finally:
        await runtime.stop()
