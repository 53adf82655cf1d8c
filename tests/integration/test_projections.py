"""Read models: fed by events, checkpointed, caught up at start, rebuilt identically."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import msgspec
import pytest

from cortex.contracts.events import EventEnvelope
from cortex.kernel.events import EventCodec, Quarantine
from cortex.kernel.projection import ProjectionRunner, StructProjection
from cortex.kernel.store import EventStore, NewEvent, open_store


class Counts(msgspec.Struct):
    by_type: dict[str, int] = {}
    last_names: dict[str, str] = {}


class CountProjection(StructProjection[Counts]):
    name = "counts"
    version = 1
    model_type = Counts

    def __init__(self) -> None:
        super().__init__()
        self.applied = 0

    def apply(self, event: EventEnvelope) -> None:
        self.applied += 1
        self.model.by_type[event.type] = self.model.by_type.get(event.type, 0) + 1
        body = msgspec.json.decode(event.data)
        if "name" in body:
            self.model.last_names[event.stream_id] = body["name"]


async def append(store: EventStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        kind = "thing.named" if i % 2 else "thing.touched"
        await store.append(
            f"thing-{i % 4}",
            [NewEvent(type=kind, stream_type="thing", data=msgspec.json.encode({"name": f"n{i}"}))],
            None,
        )


async def test_catch_up_restart_and_rebuild_give_the_same_read_model(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}", "demo")
    try:
        await append(store, 25)
        first = CountProjection()
        runner = ProjectionRunner(store, [first], batch_size=7)
        await runner.start()
        assert runner.caught_up
        assert sum(first.model.by_type.values()) == 25
        await runner.save()

        # More events arrive while the service is down; a new process restores the snapshot
        # and reads only what came after it.
        await append(store, 10, start=25)
        second = CountProjection()
        restarted = ProjectionRunner(store, [second], batch_size=7)
        await restarted.start()
        assert second.applied == 10
        assert sum(second.model.by_type.values()) == 35

        incremental = second.snapshot()
        assert await restarted.rebuild() == await store.last_position()
        assert second.snapshot() == incremental
        assert second.applied == 10 + 35

        fresh = CountProjection()
        await ProjectionRunner(store, [fresh]).rebuild()
        assert fresh.snapshot() == incremental
    finally:
        await store.close()


async def test_a_projection_of_a_new_shape_is_rebuilt_from_the_start(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}", "demo")
    try:
        await append(store, 6)
        old = CountProjection()
        runner = ProjectionRunner(store, [old])
        await runner.start()
        await runner.save()

        class NewShape(CountProjection):
            version = 2

        new = NewShape()
        await ProjectionRunner(store, [new]).start()
        assert new.applied == 6  # the version-1 snapshot was not trusted
        assert new.model == old.model
    finally:
        await store.close()


class FailsOnce(CountProjection):
    """Fails on the event at one position the first time it meets it."""

    name = "fails-once"

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.seen: list[int] = []

    def apply(self, event: EventEnvelope) -> None:
        if event.position == self.at and self.at not in self.seen:
            self.seen.append(event.position)
            raise RuntimeError("a bug, or a resource that was away")
        self.seen.append(event.position)
        super().apply(event)


async def test_an_apply_that_fails_mid_batch_applies_no_event_twice_on_retry(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path}", "demo")
    try:
        await append(store, 10)
        steady, flaky = CountProjection(), FailsOnce(at=6)
        runner = ProjectionRunner(store, [steady, flaky], batch_size=100)
        with pytest.raises(RuntimeError, match="a bug"):
            await runner.catch_up()
        assert runner.position == 5  # the failed event is next, not the batch's first
        assert await runner.catch_up() == 10
        assert steady.applied == 10
        assert flaky.applied == 10
        assert flaky.seen == [1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10]
        assert flaky.model == steady.model
    finally:
        await store.close()


class Named(msgspec.Struct, frozen=True):
    TYPE: ClassVar[str] = "thing.named"
    name: str


CODEC = EventCodec(Named)


class Names(msgspec.Struct):
    names: list[str] = []


class NamesProjection(StructProjection[Names]):
    name = "names"
    model_type = Names

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, Named):
            self.model.names.append(data.name)


class RawNamesProjection(NamesProjection):
    """Decodes the JSON itself rather than through a codec."""

    name = "raw-names"

    def apply(self, event: EventEnvelope) -> None:
        if event.type == "thing.named":
            self.model.names.append(msgspec.json.decode(event.data, type=Named).name)


async def test_an_event_that_does_not_decode_is_quarantined_and_passed_over(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path}", "demo")
    try:
        for data in (b'{"name": "a"}', b'{"name": 5}', b'{"name": "b"}'):
            await store.append(
                "thing-1", [NewEvent(type="thing.named", stream_type="thing", data=data)], None
            )
        quarantine = Quarantine("demo")
        names, raw = NamesProjection(), RawNamesProjection()
        runner = ProjectionRunner(store, [names, raw], quarantine=quarantine)
        await runner.start()
        assert runner.caught_up
        assert runner.position == 3
        assert names.model.names == raw.model.names == ["a", "b"]
        [skipped] = quarantine.events  # once, though both projections met it
        assert (skipped.position, skipped.type, skipped.reader) == (
            2,
            "thing.named",
            "projection names",
        )
        assert "Expected `str`, got `int`" in skipped.error

        # A rebuild meets it again: still skipped, not counted twice.
        await runner.rebuild()
        assert names.model.names == ["a", "b"]
        assert len(quarantine.events) == 1
    finally:
        await store.close()
