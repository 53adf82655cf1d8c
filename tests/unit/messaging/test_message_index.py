"""The message index: status transitions from host reports, in any order; copies; the bound;
an agent's messages newest first."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex.contracts.messaging import DeliveryOutcome, StatusUpdate
from cortex.messaging.message_index import Indexed, MessageIndex, advance

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_seq = itertools.count(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def message(msg_id: str, to: str | None = "b", sender: str = "a", **fields: Any) -> Indexed:
    values: dict[str, Any] = {
        "seq": next(_seq),
        "id": msg_id,
        "kind": "direct",
        "sender": sender,
        "to": to,
        "topic": None,
        "origin_id": None,
        "content_type": "application/json",
        "size": 10,
        "created_at": T0,
    }
    values.update(fields)
    return Indexed(**values)


def report(
    status: DeliveryOutcome,
    delivery: int = 1,
    when: float = 1,
    error: str | None = None,
    msg_id: str = "m1",
) -> StatusUpdate:
    return StatusUpdate(
        msg_id=msg_id,
        agent_id="b",
        status=status,
        delivery=delivery,
        host_id="h1",
        at=at(when),
        error=error,
    )


def given(*reports: StatusUpdate) -> Indexed:
    entry = message("m1")
    for r in reports:
        advance(entry, r)
    return entry


# --- status transitions ----------------------------------------------------------------------


def test_a_new_message_is_accepted_and_never_delivered() -> None:
    record = given().record()
    assert (record.status, record.deliveries, record.delivered_at, record.acked_at) == (
        "accepted",
        0,
        None,
        None,
    )


def test_accepted_then_delivered_then_acked() -> None:
    entry = given(report("delivered", when=1))
    assert (entry.status, entry.deliveries, entry.delivered_at) == ("delivered", 1, at(1))
    advance(entry, report("acked", when=2))
    assert (entry.status, entry.acked_at, entry.delivered_at) == ("acked", at(2), at(1))


def test_a_failure_records_its_error_and_the_next_delivery_counts() -> None:
    entry = given(report("delivered", 1, 1), report("failed", 1, 2, "KeyError: 'x'"))
    assert (entry.status, entry.deliveries, entry.last_error) == ("delivered", 1, "KeyError: 'x'")
    advance(entry, report("delivered", 2, 3))
    advance(entry, report("failed", 2, 4, "ValueError: y"))
    assert (entry.deliveries, entry.last_error) == (2, "ValueError: y")
    # an older failure reported late does not replace the newer error
    advance(entry, report("failed", 1, 5, "late"))
    assert entry.last_error == "ValueError: y"
    advance(entry, report("acked", 3, 6))
    assert (entry.status, entry.deliveries, entry.last_error) == ("acked", 3, "ValueError: y")


def test_status_only_moves_forward() -> None:
    entry = given(report("acked", 2, 5), report("delivered", 1, 1), report("failed", 1, 2, "e"))
    assert (entry.status, entry.deliveries, entry.acked_at) == ("acked", 2, at(5))
    assert entry.delivered_at == at(1)  # the first delivery, even though reported last


def test_acked_and_dead_lettered_are_both_final_and_the_first_one_stays() -> None:
    dead = given(report("dead_lettered", 3, 5, "boom"), report("acked", 4, 6))
    assert (dead.status, dead.dead_lettered_at, dead.acked_at, dead.last_error) == (
        "dead_lettered",
        at(5),
        None,
        "boom",
    )
    acked = given(report("acked", 1, 1), report("dead_lettered", 2, 2))
    assert (acked.status, acked.dead_lettered_at) == ("acked", None)


def test_skipped_means_the_agent_had_handled_it() -> None:
    entry = given(report("delivered", 1, 1), report("skipped", 2, 3))
    assert (entry.status, entry.deliveries, entry.acked_at) == ("acked", 2, at(3))


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_reports_in_any_order_give_the_same_record(order: tuple[int, ...]) -> None:
    reports = [
        report("delivered", 1, 1),
        report("failed", 1, 2, "first"),
        report("delivered", 2, 3),
        report("acked", 2, 4),
    ]
    entry = given(*(reports[i] for i in order))
    assert (entry.status, entry.deliveries, entry.last_error) == ("acked", 2, "first")
    assert (entry.delivered_at, entry.acked_at) == (at(1), at(4))


# --- the index ---------------------------------------------------------------------------------


def test_reports_that_come_before_the_message_wait_for_it() -> None:
    index = MessageIndex()
    index.apply(report("delivered", 1, 1))
    index.apply(report("acked", 1, 2))
    assert index.get("m1") is None
    assert index.pending == 1
    index.add(message("m1"))
    record = index.get("m1")
    assert record is not None
    assert (record.status, record.acked_at, index.pending) == ("acked", at(2), 0)


def test_waiting_reports_are_bounded() -> None:
    index = MessageIndex(pending_limit=2)
    for n in range(3):
        index.apply(report("acked", msg_id=f"m{n}"))
    assert index.pending == 2
    index.add(message("m0"))
    assert index.get("m0").status == "accepted"  # type: ignore[union-attr]
    index.add(message("m2"))
    assert index.get("m2").status == "acked"  # type: ignore[union-attr]


def test_a_repeated_id_keeps_the_first_message() -> None:
    index = MessageIndex()
    assert index.add(message("m1", size=1))
    assert not index.add(message("m1", size=2))
    assert index.get("m1").size == 1  # type: ignore[union-attr]
    assert len(index) == 1


def test_a_topic_message_counts_its_copies_but_not_replays_of_them() -> None:
    index = MessageIndex()
    index.add(message("t1", to=None, kind="topic", topic="news"))
    index.add(message("t1_b", to="b", kind="copy", topic="news", origin_id="t1"))
    index.add(message("t1_c", to="c", kind="copy", topic="news", origin_id="t1"))
    index.add(
        message("t1_c-r1", to="c", kind="copy", topic="news", origin_id="t1", replay_of="t1_c")
    )
    topic = index.get("t1")
    assert topic is not None
    assert (topic.kind, topic.copies, topic.to, topic.topic) == ("topic", 2, None, "news")
    copy = index.get("t1_b")
    assert copy is not None
    assert (copy.kind, copy.origin_id, copy.to, copy.copies) == ("copy", "t1", "b", 0)


def test_the_index_forgets_the_oldest_first() -> None:
    index = MessageIndex(limit=3)
    for n in range(5):
        index.add(message(f"m{n}", to="b"))
    assert len(index) == 3
    assert [index.get(f"m{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert [r.id for r in index.page("b", "in", 10).items] == ["m4", "m3", "m2"]
    assert [r.id for r in index.page("a", "out", 10).items] == ["m4", "m3", "m2"]


def test_forgotten_agents_leave_no_timeline() -> None:
    index = MessageIndex(limit=200)
    for n in range(1000):
        index.add(message(f"m{n}", to=f"agent{n}", sender=f"s{n}"))
    assert len(index) == 200
    assert index.page("agent0", "both", 10).items == []
    assert len(index._inbox) == 200
    assert len(index._outbox) == 200


def test_an_agents_messages_newest_first_in_out_and_both() -> None:
    index = MessageIndex()
    index.add(message("in1", sender="x", to="a"))
    index.add(message("out1", sender="a", to="y"))
    index.add(message("self", sender="a", to="a"))
    index.add(message("topic", sender="a", to=None, kind="topic", topic="t"))
    index.add(message("copy", sender="x", to="a", kind="copy", topic="t", origin_id="t0"))
    index.add(message("other", sender="x", to="y"))

    def ids(direction: str) -> list[str]:
        return [r.id for r in index.page("a", direction, 100).items]

    assert ids("in") == ["copy", "self", "in1"]
    assert ids("out") == ["topic", "self", "out1"]
    assert ids("both") == ["copy", "topic", "self", "out1", "in1"]
    assert index.page("nobody", "both", 10).items == []


def test_pages_follow_the_cursor_until_there_is_no_next() -> None:
    index = MessageIndex()
    for n in range(7):
        index.add(message(f"m{n}", sender="a" if n % 2 else "x", to="x" if n % 2 else "a"))
    pages: list[list[str]] = []
    before: str | None = None
    while True:
        page = index.page("a", "both", 3, before)
        pages.append([r.id for r in page.items])
        if page.next is None:
            break
        assert page.next == page.items[-1].id
        before = page.next
    assert pages == [["m6", "m5", "m4"], ["m3", "m2", "m1"], ["m0"]]
    exact = index.page("a", "both", 7)
    assert (len(exact.items), exact.next) == (7, None)
    # a cursor the index has forgotten: everything older is forgotten too
    assert index.page("a", "both", 3, "gone").items == []
