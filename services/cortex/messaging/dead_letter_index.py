"""The dead letters in the dead-letter stream: id -> stream sequence, with what a listing shows.

Rebuilt from the stream (headers only) at every start and followed after; payloads stay in the
stream and are fetched by sequence when one dead letter is asked for. Dead letters leave from
anywhere in the stream (replayed, deleted, aged out), so the order is kept in sorted lists with
removal in place, and the ids of recent removals are remembered so that a listing paged with
`after` survives its cursor being replayed meanwhile.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field

from cortex.contracts.messaging import DeadLetter, DeadLetterPage
from cortex.kernel.errors import Invalid

REMEMBERED_REMOVALS = 10_000


@dataclass(slots=True)
class DeadEntry:
    seq: int
    letter: DeadLetter
    """Without its payload."""
    older: list[int] = field(default_factory=list)
    """Earlier copies of the same dead message (dead-lettered again after JetStream's
    duplicate window): deleted along with it."""

    @property
    def seqs(self) -> list[int]:
        return [*self.older, self.seq]


def _seq(entry: DeadEntry) -> int:
    return entry.seq


class DeadLetterIndex:
    def __init__(self) -> None:
        self._by_id: dict[str, DeadEntry] = {}
        self._all: list[DeadEntry] = []
        self._by_agent: dict[str, list[DeadEntry]] = {}
        self._removed: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, seq: int, letter: DeadLetter) -> None:
        """A dead letter read from the stream, in stream order."""
        earlier = self._by_id.get(letter.id)
        older: list[int] = []
        if earlier is not None:
            self._unlist(earlier)
            older = earlier.seqs
        entry = DeadEntry(seq, letter, older)
        self._by_id[letter.id] = entry
        self._all.append(entry)
        self._by_agent.setdefault(letter.agent_id, []).append(entry)
        self._removed.pop(letter.id, None)

    def get(self, dead_id: str) -> DeadEntry | None:
        return self._by_id.get(dead_id)

    def remove(self, dead_id: str) -> DeadEntry | None:
        entry = self._by_id.pop(dead_id, None)
        if entry is None:
            return None
        self._unlist(entry)
        self._removed[dead_id] = entry.seq
        while len(self._removed) > REMEMBERED_REMOVALS:
            self._removed.popitem(last=False)
        return entry

    def forget_before(self, first_seq: int) -> int:
        """Drop what the stream no longer holds (aged out); returns how many were dropped."""
        gone = [e.letter.id for e in self._all[: bisect_left(self._all, first_seq, key=_seq)]]
        for dead_id in gone:
            self.remove(dead_id)
        return len(gone)

    def page(
        self, agent_id: str | None = None, limit: int = 100, after: str | None = None
    ) -> DeadLetterPage:
        """Oldest first; `next` is the id to pass as `after` for the following page."""
        entries = self._all if agent_id is None else self._by_agent.get(agent_id, [])
        start = 0
        if after is not None:
            cursor = self._by_id.get(after)
            seq = cursor.seq if cursor is not None else self._removed.get(after)
            if seq is None:
                raise Invalid.field("$.after", f"no dead letter {after!r} is known")
            start = bisect_right(entries, seq, key=_seq)
        chunk = entries[start : start + limit]
        more = start + limit < len(entries)
        return DeadLetterPage(
            items=[e.letter for e in chunk],
            total=len(entries),
            next=chunk[-1].letter.id if more and chunk else None,
        )

    def _unlist(self, entry: DeadEntry) -> None:
        _drop(self._all, entry)
        mine = self._by_agent.get(entry.letter.agent_id)
        if mine is not None:
            _drop(mine, entry)
            if not mine:
                del self._by_agent[entry.letter.agent_id]


def _drop(entries: list[DeadEntry], entry: DeadEntry) -> None:
    i = bisect_left(entries, entry.seq, key=_seq)
    if i < len(entries) and entries[i] is entry:
        del entries[i]
