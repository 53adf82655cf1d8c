"""The dead-letter index: oldest first, per agent, paged; removal from anywhere; aged-out ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cortex.contracts.messaging import DeadLetter
from cortex.kernel.errors import Invalid
from cortex.messaging.dead_letter_index import DeadLetterIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def letter(dead_id: str, agent_id: str = "a") -> DeadLetter:
    return DeadLetter(
        id=dead_id,
        agent_id=agent_id,
        from_="x",
        content_type="text/plain",
        size=3,
        deliveries=5,
        reason="its handler failed in all 5 deliveries",
        created_at=T0,
        dead_at=T0,
    )


def filled() -> DeadLetterIndex:
    index = DeadLetterIndex()
    for seq, (dead_id, agent) in enumerate(
        [("d1", "a"), ("d2", "b"), ("d3", "a"), ("d4", "a"), ("d5", "b")], start=1
    ):
        index.add(seq, letter(dead_id, agent))
    return index


def ids(page_items: list[DeadLetter]) -> list[str]:
    return [d.id for d in page_items]


def test_oldest_first_all_or_one_agents_with_totals() -> None:
    index = filled()
    page = index.page()
    assert (ids(page.items), page.total, page.next) == (["d1", "d2", "d3", "d4", "d5"], 5, None)
    page = index.page("a")
    assert (ids(page.items), page.total) == (["d1", "d3", "d4"], 3)
    assert index.page("nobody").total == 0


def test_pages_follow_after() -> None:
    index = filled()
    first = index.page(limit=2)
    assert (ids(first.items), first.next) == (["d1", "d2"], "d2")
    second = index.page(limit=2, after="d2")
    assert (ids(second.items), second.next) == (["d3", "d4"], "d4")
    last = index.page(limit=2, after="d4")
    assert (ids(last.items), last.next, last.total) == (["d5"], None, 5)
    assert ids(index.page("a", limit=2, after="d1").items) == ["d3", "d4"]


def test_a_cursor_replayed_meanwhile_still_pages_on() -> None:
    index = filled()
    assert index.remove("d2") is not None
    assert ids(index.page(limit=2, after="d2").items) == ["d3", "d4"]
    with pytest.raises(Invalid) as caught:
        index.page(after="never")
    assert caught.value.violations[0].field == "$.after"


def test_removal_from_the_middle() -> None:
    index = filled()
    removed = index.remove("d3")
    assert removed is not None
    assert removed.seq == 3
    assert index.remove("d3") is None
    assert ids(index.page().items) == ["d1", "d2", "d4", "d5"]
    assert ids(index.page("a").items) == ["d1", "d4"]
    assert len(index) == 4


def test_what_the_stream_aged_out_is_forgotten() -> None:
    index = filled()
    assert index.forget_before(4) == 3
    assert ids(index.page().items) == ["d4", "d5"]
    assert index.forget_before(4) == 0


def test_the_same_message_dead_again_is_listed_once_and_remembers_both_copies() -> None:
    index = filled()
    index.add(6, letter("d1", "a"))
    assert ids(index.page().items) == ["d2", "d3", "d4", "d5", "d1"]
    entry = index.get("d1")
    assert entry is not None
    assert entry.seqs == [1, 6]
