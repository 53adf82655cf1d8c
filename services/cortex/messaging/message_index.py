"""The message index: one record per message that travelled, with what became of it.

A read model of JetStream, not of the event store: records come from the messages stream
(headers only) and the status stream, and the whole index is rebuilt from both at every start.
It is bounded (`MAX_INDEXED` records, the oldest forgotten first) and holds no I/O, so the status
rules are unit-tested as plain functions.

Status only moves forward: accepted -> delivered -> acked | dead_lettered. Agent hosts report
each delivery on their own and reports can arrive out of order (two hosts, a redelivery racing
the first ack), so every report is folded in as "at least this far".
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from cortex.contracts.messages import ContentType
from cortex.contracts.messaging import (
    MessageKind,
    MessagePage,
    MessageRecord,
    MessageStatus,
    StatusUpdate,
)

MAX_INDEXED = 200_000
"""Records kept in memory; about 300 bytes each, so some 60 MB at the bound."""
MAX_PENDING = 20_000
"""Reports kept for messages not indexed yet (a host can report a delivery before this
service has read the message from the stream); the oldest are dropped first."""

_RANK: dict[MessageStatus, int] = {"accepted": 0, "delivered": 1, "acked": 2, "dead_lettered": 2}


@dataclass(slots=True)
class Indexed:
    """One message in the index (mutable, unlike the `MessageRecord` it is shown as)."""

    seq: int
    """Its sequence in the messages stream: the order of the index."""
    id: str
    kind: MessageKind
    sender: str
    to: str | None
    topic: str | None
    origin_id: str | None
    content_type: ContentType
    size: int
    created_at: datetime
    replay_of: str | None = None
    status: MessageStatus = "accepted"
    deliveries: int = 0
    last_error: str | None = None
    error_delivery: int = 0
    """The delivery `last_error` came from: an older failure reported late does not replace it."""
    delivered_at: datetime | None = None
    acked_at: datetime | None = None
    dead_lettered_at: datetime | None = None
    copies: int = 0

    def record(self) -> MessageRecord:
        return MessageRecord(
            id=self.id,
            kind=self.kind,
            from_=self.sender,
            to=self.to,
            topic=self.topic,
            origin_id=self.origin_id,
            content_type=self.content_type,
            size=self.size,
            status=self.status,
            deliveries=self.deliveries,
            last_error=self.last_error,
            created_at=self.created_at,
            delivered_at=self.delivered_at,
            acked_at=self.acked_at,
            dead_lettered_at=self.dead_lettered_at,
            copies=self.copies,
        )

    @property
    def inbound(self) -> bool:
        """In an agent's inbox (a direct message or a topic message's copy)."""
        return self.kind != "topic"

    @property
    def outbound(self) -> bool:
        """Sent by its sender (a copy is the fan-out's doing, not the sender's)."""
        return self.kind != "copy"


def advance(entry: Indexed, update: StatusUpdate) -> None:
    """Fold one host report into a record; whatever order reports come in, the record ends up
    the same (the highest delivery, the furthest status, the earliest time each was reached)."""
    entry.deliveries = max(entry.deliveries, update.delivery)
    status = update.status
    failed = status in ("failed", "dead_lettered") and update.error is not None
    if failed and update.delivery >= entry.error_delivery:
        entry.last_error = update.error
        entry.error_delivery = update.delivery
    if status in ("delivered", "failed", "acked", "skipped"):
        # An ack (or a skip) also says the message was delivered, should that report be lost.
        entry.delivered_at = _earliest(entry.delivered_at, update.at)
    if status in ("acked", "skipped"):
        # skipped: a redelivery of a message the agent had already handled, so it was acked
        # even if that report never arrived (the host crashed right after the handler).
        _reach(entry, "acked")
        if entry.status == "acked":
            entry.acked_at = _earliest(entry.acked_at, update.at)
    elif status == "dead_lettered":
        _reach(entry, "dead_lettered")
        if entry.status == "dead_lettered":
            entry.dead_lettered_at = _earliest(entry.dead_lettered_at, update.at)
    else:
        _reach(entry, "delivered")


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _reach(entry: Indexed, status: MessageStatus) -> None:
    # acked and dead_lettered are both final: whichever came first stays.
    if _RANK[status] > _RANK[entry.status]:
        entry.status = status


class _Timeline:
    """One agent's messages in stream order; the oldest go first when the index is full."""

    __slots__ = ("entries", "start")

    def __init__(self) -> None:
        self.entries: list[Indexed] = []
        self.start = 0

    def __len__(self) -> int:
        return len(self.entries) - self.start

    def append(self, entry: Indexed) -> None:
        self.entries.append(entry)

    def drop_oldest(self, entry: Indexed) -> None:
        if self.start < len(self.entries) and self.entries[self.start] is entry:
            self.start += 1
            # Compact now and then rather than shift the list at every eviction.
            if self.start > 64 and self.start * 2 > len(self.entries):
                del self.entries[: self.start]
                self.start = 0

    def newest_before(self, seq: int) -> Iterator[Indexed]:
        end = bisect_left(self.entries, seq, lo=self.start, key=lambda e: e.seq)
        for i in range(end - 1, self.start - 1, -1):
            yield self.entries[i]


class MessageIndex:
    def __init__(self, limit: int = MAX_INDEXED, pending_limit: int = MAX_PENDING) -> None:
        self._limit = limit
        self._pending_limit = pending_limit
        self._by_id: OrderedDict[str, Indexed] = OrderedDict()
        self._inbox: dict[str, _Timeline] = {}
        self._outbox: dict[str, _Timeline] = {}
        self._pending: OrderedDict[str, list[StatusUpdate]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- folding ---------------------------------------------------------------------------

    def add(self, entry: Indexed) -> bool:
        """A message read from the messages stream, in stream order. False when its id is
        already indexed (a publisher reused an id after JetStream's duplicate window)."""
        if entry.id in self._by_id:
            return False
        self._by_id[entry.id] = entry
        if entry.inbound and entry.to is not None:
            self._inbox.setdefault(entry.to, _Timeline()).append(entry)
        if entry.outbound:
            self._outbox.setdefault(entry.sender, _Timeline()).append(entry)
        if entry.kind == "copy" and entry.origin_id is not None and entry.replay_of is None:
            origin = self._by_id.get(entry.origin_id)
            if origin is not None and origin.kind == "topic":
                origin.copies += 1
        for update in self._pending.pop(entry.id, ()):
            advance(entry, update)
        while len(self._by_id) > self._limit:
            self._forget_oldest()
        return True

    def apply(self, update: StatusUpdate) -> None:
        """A host's report (or a dead letter seen in the dead-letter stream)."""
        entry = self._by_id.get(update.msg_id)
        if entry is not None:
            advance(entry, update)
            return
        self._pending.setdefault(update.msg_id, []).append(update)
        while len(self._pending) > self._pending_limit:
            self._pending.popitem(last=False)

    def _forget_oldest(self) -> None:
        _, entry = self._by_id.popitem(last=False)
        for timelines, agent in ((self._inbox, entry.to), (self._outbox, entry.sender)):
            if agent is None:
                continue
            timeline = timelines.get(agent)
            if timeline is None:
                continue
            timeline.drop_oldest(entry)
            if not timeline:
                del timelines[agent]

    # --- reading ---------------------------------------------------------------------------

    def get(self, msg_id: str) -> MessageRecord | None:
        entry = self._by_id.get(msg_id)
        return entry.record() if entry else None

    def page(
        self, agent_id: str, direction: str, limit: int, before: str | None = None
    ) -> MessagePage:
        """An agent's messages, newest first; `next` is the cursor of the following page."""
        bound = 1 << 62
        if before is not None:
            cursor = self._by_id.get(before)
            if cursor is None:
                # Forgotten: the index forgets oldest first, so everything older is gone too.
                return MessagePage(items=[])
            bound = cursor.seq
        timelines = []
        if direction in ("in", "both") and agent_id in self._inbox:
            timelines.append(self._inbox[agent_id])
        if direction in ("out", "both") and agent_id in self._outbox:
            timelines.append(self._outbox[agent_id])
        merged = heapq.merge(*(t.newest_before(bound) for t in timelines), key=lambda e: -e.seq)
        items: list[Indexed] = []
        more = False
        for entry in merged:
            if items and items[-1] is entry:  # a message to oneself is in both timelines
                continue
            if len(items) == limit:
                more = True
                break
            items.append(entry)
        return MessagePage(
            items=[e.record() for e in items], next=items[-1].id if more and items else None
        )
