"""Headers as the platform writes them, read into index entries and dead letters; derived ids."""

from __future__ import annotations

from datetime import UTC, datetime

from cortex.contracts import messages as m
from cortex.contracts.subjects import Subjects
from cortex.messaging import wire

LAYOUT = wire.Layout(Subjects("cortex"))
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def headers(**extra: str) -> dict[str, str]:
    return {
        m.MSG_ID: "m1",
        m.FROM: "sender",
        m.CONTENT_TYPE: "text/plain",
        m.CREATED_AT: WHEN.isoformat(),
        "Nats-Msg-Size": "42",
        **extra,
    }


def test_an_inbox_message_is_direct_and_its_agent_comes_from_the_stored_subject() -> None:
    entry = wire.indexed(LAYOUT, "cortex.msg.agent.3.a1", headers(), 7)
    assert entry is not None
    assert (entry.kind, entry.id, entry.to, entry.sender, entry.seq) == (
        "direct",
        "m1",
        "a1",
        "sender",
        7,
    )
    assert (entry.size, entry.content_type, entry.created_at) == (42, "text/plain", WHEN)


def test_a_topic_message_and_its_copy() -> None:
    topic = wire.indexed(LAYOUT, "cortex.msg.topic.orders.created", headers(), 1)
    assert topic is not None
    assert (topic.kind, topic.topic, topic.to) == ("topic", "orders.created", None)
    copy = wire.indexed(
        LAYOUT,
        "cortex.msg.agent.0.a2",
        headers(**{m.ORIGIN_ID: "t1", m.TOPIC: "orders.created", m.MSG_ID: "t1_a2"}),
        2,
    )
    assert copy is not None
    assert (copy.kind, copy.origin_id, copy.topic, copy.to) == (
        "copy",
        "t1",
        "orders.created",
        "a2",
    )


def test_defaults_for_what_an_outside_publisher_leaves_out() -> None:
    entry = wire.indexed(LAYOUT, "cortex.msg.agent.0.a1", {m.CONTENT_TYPE: "image/png"}, 9, WHEN)
    assert entry is not None
    assert (entry.id, entry.sender, entry.content_type, entry.size, entry.created_at) == (
        "seq-9",
        "unknown",
        "application/octet-stream",
        0,
        WHEN,
    )
    assert wire.indexed(LAYOUT, "cortex.msg.other.x", headers(), 1) is None


def test_a_claim_checked_message_has_its_real_size() -> None:
    entry = wire.indexed(LAYOUT, "cortex.msg.agent.0.a1", headers(**{m.PAYLOAD_SIZE: "5000000"}), 1)
    assert entry is not None
    assert entry.size == 5_000_000


def test_a_dead_letter_read_from_its_headers() -> None:
    dead = wire.dead_letter(
        LAYOUT,
        "cortex.dlq.a1",
        headers(
            **{
                m.MSG_ID: "dead-m1",
                m.DELIVERIES: "5",
                m.DEAD_REASON: "its handler failed",
                m.LAST_ERROR: "KeyError: 'x'",
                m.DEAD_AT: WHEN.isoformat(),
                "X-Trace": "t1",
            }
        ),
        3,
    )
    assert dead is not None
    assert (dead.id, dead.agent_id, dead.deliveries, dead.reason, dead.last_error) == (
        "m1",
        "a1",
        5,
        "its handler failed",
        "KeyError: 'x'",
    )
    assert (dead.size, dead.dead_at, dead.headers) == (42, WHEN, {"X-Trace": "t1"})
    report = wire.dead_report(dead)
    assert (report.msg_id, report.status, report.delivery) == ("m1", "dead_lettered", 5)


def test_copy_ids_are_deterministic_subject_tokens() -> None:
    assert wire.copy_id("0192-ab", "a1") == "0192-ab_a1"
    assert wire.copy_id("odd.id with space", "a1") == "odd-id-with-space_a1"
    copied = wire.copy_headers(
        headers(**{"Nats-Expected-Stream": "X", "X-Own": "1"}), "news", "t1", "a1"
    )
    assert copied[m.MSG_ID] == "t1_a1"
    assert (copied[m.ORIGIN_ID], copied[m.TOPIC], copied[m.TO]) == ("t1", "news", "a1")
    assert "Nats-Expected-Stream" not in copied
    assert copied["X-Own"] == "1"


def test_replay_ids_count_replays_of_replays() -> None:
    assert wire.replay_id("m1") == "m1-r1"
    assert wire.replay_id("m1-r1") == "m1-r2"
    assert wire.replay_id("m1-r9") == "m1-r10"
    assert wire.replay_id("t1_a1") == "t1_a1-r1"


def test_replay_headers_drop_the_dead_letter_and_server_headers() -> None:
    dead = headers(
        **{
            m.MSG_ID: "dead-m1",
            m.DELIVERIES: "5",
            m.DEAD_REASON: "r",
            m.LAST_ERROR: "e",
            m.DEAD_AT: WHEN.isoformat(),
            "X-Own": "1",
        }
    )
    replayed = wire.replay_headers(dead, "m1-r1", "m1")
    assert replayed == {
        m.MSG_ID: "m1-r1",
        m.REPLAY_OF: "m1",
        m.FROM: "sender",
        m.CONTENT_TYPE: "text/plain",
        m.CREATED_AT: WHEN.isoformat(),
        "X-Own": "1",
    }
