"""Properties of agent state, checked by hypothesis: racing unconditional writes converge
whatever their arrival order, and the read model rebuilt from events is byte for byte the one
built incrementally across a snapshot and a restore."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.contracts.events import EventEnvelope
from cortex.contracts.registry import HostRegistered
from cortex.contracts.state import HISTORY, PatchState, PutState
from cortex.kernel.errors import PreconditionFailed
from cortex.registry.state_domain import (
    PURGED,
    STREAM_TYPE,
    Doc,
    StateEvent,
    codec,
    delete,
    evolve,
    patch,
    put,
    stream_id,
)
from cortex.registry.state_projection import StateProjection

A = "agent-1"
NOW = 1_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=2), json_values, max_size=3)
writers = st.sampled_from(["a", "b", "c"])
# Stamps of distinct writes are distinct: a writer does not write twice at one clock reading,
# and with equal stamps "the greatest" would not name one write.
stamps = st.tuples(st.integers(0, 20), writers)


def apply_puts(commands: list[PutState]) -> Doc:
    doc = Doc()
    for cmd in commands:
        for event in put(doc, cmd, NOW):
            doc = evolve(doc, event)
    return doc


def puts_of(stamp_list: list[tuple[int, str]]) -> tuple[list[PutState], PutState]:
    commands = [
        PutState(agent_id=A, value={"write": i}, writer=writer, written_at=at)
        for i, (at, writer) in enumerate(stamp_list)
    ]
    return commands, max(commands, key=lambda c: (c.written_at, c.writer))


@given(st.lists(stamps, min_size=1, max_size=5, unique=True))
def test_every_arrival_order_of_unconditional_puts_ends_at_the_greatest_stamp(
    stamp_list: list[tuple[int, str]],
) -> None:
    commands, winner = puts_of(stamp_list)
    for order in itertools.permutations(commands):
        doc = apply_puts(list(order))
        assert (doc.value, doc.stamp) == (winner.value, (winner.written_at, winner.writer))


@given(st.lists(stamps, min_size=1, max_size=60, unique=True), st.randoms())
def test_long_races_of_unconditional_puts_converge_too(
    stamp_list: list[tuple[int, str]], rnd: random.Random
) -> None:
    commands, winner = puts_of(stamp_list)
    for _ in range(5):
        rnd.shuffle(commands)
        assert apply_puts(commands).value == winner.value


# --- projection rebuild ----------------------------------------------------------------------

agents = st.sampled_from(["a1", "a2", "a3"])
commands = st.one_of(
    st.tuples(st.just("put"), agents, json_values, stamps, st.none()),
    st.tuples(st.just("put"), agents, json_values, stamps, st.integers(-1, 1)),
    st.tuples(st.just("patch"), agents, json_objects, stamps, st.none()),
    st.tuples(st.just("patch"), agents, json_objects, stamps, st.integers(-1, 1)),
    st.tuples(st.just("delete"), agents, st.none(), stamps, st.none()),
    st.tuples(st.just("other"), agents, st.none(), stamps, st.none()),
)
Command = tuple[str, str, Any, tuple[int, str], int | None]


class Feed:
    """Turns events into envelopes as a store would: per-stream versions, global positions."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}
        self.envelopes: list[EventEnvelope] = []

    def add(self, stream: str, kind: str, data: bytes) -> None:
        self.position += 1
        self.versions[stream] = self.versions.get(stream, 0) + 1
        self.envelopes.append(
            EventEnvelope(
                event_id=str(self.position),
                stream_id=stream,
                stream_type=stream.partition("-")[0],
                version=self.versions[stream],
                position=self.position,
                type=kind,
                data=msgspec.Raw(data),
                occurred_at=T0 + timedelta(milliseconds=self.position * 7),
            )
        )

    def event(self, agent_id: str, event: StateEvent) -> None:
        new = codec.new(event, stream_type=STREAM_TYPE)
        self.add(stream_id(agent_id), new.type, new.data)


def decide(doc: Doc, command: Command) -> list[StateEvent]:
    kind, agent_id, body, (at, writer), offset = command
    # An offset turns into an expected version: the current one, or one off (a conflict).
    expected = None if offset is None else max(0, doc.version + offset)
    if kind == "put":
        cmd = PutState(
            agent_id=agent_id, value=body, writer=writer, written_at=at, expected_version=expected
        )
        return put(doc, cmd, NOW)
    if kind == "patch":
        change = PatchState(
            agent_id=agent_id, patch=body, writer=writer, written_at=at, expected_version=expected
        )
        return patch(doc, change, NOW)
    return delete(doc, agent_id, PURGED)


@settings(max_examples=150)
@given(st.lists(commands, max_size=80), st.data())
def test_the_read_model_is_the_same_rebuilt_or_built_across_a_restore(
    script: list[Command], data: st.DataObject
) -> None:
    feed = Feed()
    docs: dict[str, Doc] = {}
    for command in script:
        kind, agent_id = command[0], command[1]
        if kind == "other":
            # Events the read model must skip: another aggregate's, an unknown state type.
            registered = HostRegistered(
                host_id="h1", boot_id="b", hostname="x", pid=1, started_at=T0
            )
            feed.add("host-h1", "host.registered", msgspec.json.encode(registered))
            feed.add(stream_id(agent_id), "state.from_the_future", b"{}")
            continue
        doc = docs.get(agent_id, Doc())
        try:
            events = decide(doc, command)
        except PreconditionFailed:
            continue
        for event in events:
            doc = evolve(doc, event)
            feed.event(agent_id, event)
        docs[agent_id] = doc

    fresh = StateProjection()
    for envelope in feed.envelopes:
        fresh.apply(envelope)

    cut = data.draw(st.integers(0, len(feed.envelopes)), label="snapshot after")
    before = StateProjection()
    for envelope in feed.envelopes[:cut]:
        before.apply(envelope)
    after = StateProjection()
    after.restore(before.snapshot())
    for envelope in feed.envelopes[cut:]:
        after.apply(envelope)

    assert after.snapshot() == fresh.snapshot()
    for agent_id, doc in docs.items():
        assert fresh.doc(agent_id) == (doc, feed.versions.get(stream_id(agent_id), 0))
        history = fresh.history(agent_id)
        assert [v.version for v in history] == list(
            range(doc.version, max(0, doc.version - HISTORY - 1), -1)
        )
        assert fresh.current(agent_id).value == doc.value
