"""The event store contract: every adapter (SQLite, ArangoDB) must pass every test here."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from datetime import UTC, datetime

import msgspec
import pytest

from cortex.kernel.errors import Invalid
from cortex.kernel.store import (
    AlreadyApplied,
    Claim,
    ConcurrencyError,
    EventStore,
    NewEvent,
    open_store,
)
from tests.support.race import append_first


def event(kind: str = "thing.happened", **data: object) -> NewEvent:
    return NewEvent(
        type=kind, stream_type=kind.split(".", maxsplit=1)[0], data=msgspec.json.encode(data)
    )


def payload(e: object) -> object:
    return json.loads(bytes(e.data))  # type: ignore[attr-defined]


async def test_appended_events_read_back_with_every_field(store: EventStore) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    first = NewEvent(
        type="agent.created",
        stream_type="agent",
        data=b'{"name": "a1"}',
        occurred_at=at,
        correlation_id="corr-1",
        causation_id="cause-1",
        actor="alice",
        schema_version=2,
    )
    version = await store.append("agent-1", [first, event("agent.scaled", replicas=3)], 0)
    assert version == 2

    got = await store.read("agent-1")
    assert [e.version for e in got] == [1, 2]
    assert got[0].event_id == first.event_id
    assert got[0].stream_id == "agent-1"
    assert got[0].stream_type == "agent"
    assert got[0].type == "agent.created"
    assert payload(got[0]) == {"name": "a1"}
    assert got[0].occurred_at == at
    assert (got[0].correlation_id, got[0].causation_id, got[0].actor) == (
        "corr-1",
        "cause-1",
        "alice",
    )
    assert got[0].schema_version == 2
    assert payload(got[1]) == {"replicas": 3}
    assert got[0].position < got[1].position


async def test_read_from_a_version_and_an_unknown_stream(store: EventStore) -> None:
    await store.append("s-1", [event(n=i) for i in range(5)], 0)
    assert [payload(e) for e in await store.read("s-1", from_version=4)] == [{"n": 3}, {"n": 4}]
    assert await store.read("nobody") == []


async def test_a_stale_expected_version_is_refused_and_writes_nothing(store: EventStore) -> None:
    await store.append("s-1", [event(n=1)], 0)
    with pytest.raises(ConcurrencyError) as caught:
        await store.append("s-1", [event(n=2), event(n=3), event(n=4)], 0)
    assert caught.value.actual == 1
    assert caught.value.details["current_version"] == 1
    assert [payload(e) for e in await store.read("s-1")] == [{"n": 1}]
    assert await store.last_position() == 1

    with pytest.raises(ConcurrencyError):
        await store.append("s-1", [event(n=2)], 5)
    assert await store.append("s-1", [event(n=2)], 1) == 2


async def test_no_expected_version_appends_at_the_end(store: EventStore) -> None:
    await store.append("s-1", [event(n=1)], None)
    assert await store.append("s-1", [event(n=2)], None) == 2


async def test_concurrent_writers_in_one_process_exactly_one_wins(store: EventStore) -> None:
    async def attempt(i: int) -> str:
        try:
            await store.append("contested", [event(writer=i)], 0)
        except ConcurrencyError:
            return "conflict"
        return "won"

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert results.count("won") == 1
    assert len(await store.read("contested")) == 1


def test_two_processes_racing_on_one_stream_exactly_one_wins(
    store_url: str, service_name: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=append_first,
                args=(store_url, service_name, f"race-{round_}", barrier, results),
            )
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        outcomes = sorted(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=30)
        assert outcomes == ["conflict", "won"], f"round {round_}: {outcomes}"

    async def check() -> None:
        store = await open_store(store_url, service_name)
        try:
            for round_ in range(3):
                assert len(await store.read(f"race-{round_}")) == 1
        finally:
            await store.close()

    asyncio.run(check())


async def test_read_all_is_commit_order_and_resumes_from_any_position(store: EventStore) -> None:
    for i in range(10):
        await store.append(f"s-{i % 3}", [event(n=i)], None)
    everything = await store.read_all(0, 1000)
    assert [payload(e) for e in everything] == [{"n": i} for i in range(10)]
    positions = [e.position for e in everything]
    assert positions == sorted(positions)
    assert len(set(positions)) == 10

    paged, after = [], 0
    while page := await store.read_all(after, 3):
        paged.extend(page)
        after = page[-1].position
    assert [e.event_id for e in paged] == [e.event_id for e in everything]

    resumed = await store.read_all(everything[6].position, 1000)
    assert [payload(e) for e in resumed] == [{"n": i} for i in range(7, 10)]
    assert await store.last_position() == everything[-1].position


async def test_large_and_unicode_payloads_round_trip_exactly(store: EventStore) -> None:
    big = "x" * (4 * 1024 * 1024)
    text = 'héllo wörld ✓ 日本語 عربى 👩‍🚀 \u0000 \\ " \n\t'
    await store.append("s-1", [event(big=big), event(text=text, nested={"ü": [text]})], 0)
    got = await store.read("s-1")
    assert payload(got[0]) == {"big": big}
    assert payload(got[1]) == {"text": text, "nested": {"ü": [text]}}


async def test_reopening_the_store_keeps_events_versions_and_positions(
    store_url: str, service_name: str
) -> None:
    first = await open_store(store_url, service_name)
    await first.append("s-1", [event(n=1), event(n=2)], 0)
    await first.put_meta("checkpoint", b"\x00\x01binary")
    last = await first.last_position()
    await first.close()

    again = await open_store(store_url, service_name)
    try:
        assert [payload(e) for e in await again.read("s-1")] == [{"n": 1}, {"n": 2}]
        assert await again.append("s-1", [event(n=3)], 2) == 3
        assert (await again.read_all(last, 10))[0].position > last
        assert await again.get_meta("checkpoint") == b"\x00\x01binary"
    finally:
        await again.close()


async def test_a_store_records_its_schema_once_and_keys_of_any_length_work(
    store_url: str, service_name: str
) -> None:
    first = await open_store(store_url, service_name)
    assert first.migrated_from == 0
    long_key = "idempotency:" + "k" * 300
    await first.put_meta(long_key, b"one")
    await first.close()
    again = await open_store(store_url, service_name)
    try:
        assert again.migrated_from == again.schema_version >= 1
        assert await again.get_meta(long_key) == b"one"
        assert await again.get_meta(long_key[:-1]) is None
    finally:
        await again.close()


async def test_meta_values_are_replaced_and_deleted(store: EventStore) -> None:
    assert await store.get_meta("k") is None
    await store.put_meta("k", b"one")
    await store.put_meta("k", b"two")
    assert await store.get_meta("k") == b"two"
    await store.delete_meta("k")
    assert await store.get_meta("k") is None
    await store.delete_meta("k")  # deleting what is gone is fine


async def test_bad_arguments_are_refused_before_anything_is_written(store: EventStore) -> None:
    with pytest.raises(Invalid, match="events"):
        await store.append("s-1", [], 0)
    with pytest.raises(Invalid, match="stream_id"):
        await store.append("", [event()], 0)
    with pytest.raises(Invalid, match="expected_version"):
        await store.append("s-1", [event()], -1)
    assert await store.last_position() == 0


async def test_a_claim_is_written_with_the_events(store: EventStore) -> None:
    claim = Claim("idem:k1", b"applied")
    assert await store.append("s-1", [event(n=1)], 0, claim=claim) == 1
    assert await store.get_meta("idem:k1") == b"applied"
    assert [payload(e) for e in await store.read("s-1")] == [{"n": 1}]


async def test_a_taken_claim_writes_nothing_and_raises(store: EventStore) -> None:
    await store.append("s-1", [event(n=1)], 0, claim=Claim("idem:k1", b"first"))
    last = await store.last_position()
    for stream, expected in (("s-1", 1), ("s-2", None), ("s-1", 0)):
        # Refused for the claim before the version is looked at: a stale version too.
        with pytest.raises(AlreadyApplied) as caught:
            await store.append(stream, [event(n=2)], expected, claim=Claim("idem:k1", b"second"))
        assert caught.value.key == "idem:k1"
    with pytest.raises(AlreadyApplied):
        await store.claim(Claim("idem:k1", b"alone"))
    assert await store.get_meta("idem:k1") == b"first"
    assert await store.last_position() == last
    assert await store.read("s-2") == []


async def test_a_claim_is_not_written_when_its_append_is_refused(store: EventStore) -> None:
    await store.append("s-1", [event(n=1)], 0)
    with pytest.raises(ConcurrencyError):
        await store.append("s-1", [event(n=2)], 0, claim=Claim("idem:k1", b"applied"))
    assert await store.get_meta("idem:k1") is None
    # Free, so the retry that decides again on the fresh stream takes it.
    assert await store.append("s-1", [event(n=2)], 1, claim=Claim("idem:k1", b"applied")) == 2
    assert await store.get_meta("idem:k1") == b"applied"


async def test_a_claim_alone_and_the_record_it_may_replace(store: EventStore) -> None:
    await store.claim(Claim("idem:k1", b"old"))
    assert await store.get_meta("idem:k1") == b"old"
    with pytest.raises(AlreadyApplied):
        await store.claim(Claim("idem:k1", b"new", replaces=b"something else"))
    # An expired record is replaced only by a writer that saw it: of two, one wins.
    await store.append("s-1", [event(n=1)], 0, claim=Claim("idem:k1", b"new", replaces=b"old"))
    with pytest.raises(AlreadyApplied):
        await store.claim(Claim("idem:k1", b"newer", replaces=b"old"))
    assert await store.get_meta("idem:k1") == b"new"


async def test_racing_claims_of_one_key_exactly_one_writes(
    store_url: str, service_name: str
) -> None:
    # Two stores on one database: separate connections, as two replicas have.
    stores = [await open_store(store_url, service_name) for _ in range(2)]
    try:

        async def attempt(i: int) -> str:
            try:
                await stores[i % 2].append(
                    f"s-{i}", [event(writer=i)], 0, claim=Claim("idem:contested", str(i).encode())
                )
            except AlreadyApplied:
                return "applied already"
            return "won"

        results = await asyncio.gather(*(attempt(i) for i in range(20)))
        assert results.count("won") == 1
        winner = results.index("won")
        assert await stores[0].get_meta("idem:contested") == str(winner).encode()
        everything = await stores[0].read_all(0, 100)
        assert [e.stream_id for e in everything] == [f"s-{winner}"]
    finally:
        for opened in stores:
            await opened.close()
