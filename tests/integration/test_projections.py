"""Read models: fed by events, checkpointed, caught up at start, rebuilt identically."""

from __future__ import annotations

from pathlib import Path

import msgspec

from cortex.contracts.events import EventEnvelope
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
