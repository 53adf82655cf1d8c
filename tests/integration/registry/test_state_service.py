"""Agent state over a real nats-server and a real SQLite store: commands through `ServiceClient`
as the gateway and the SDK send them, watchers on core NATS, purges published as the lifecycle
service publishes them, writers racing from separate processes."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cortex.contracts import headers
from cortex.contracts.events import EventEnvelope
from cortex.contracts.state import (
    HISTORY,
    STATE_LIMIT,
    GetState,
    PatchState,
    PutState,
    StateHistory,
    StateView,
    StateWrite,
)
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import Invalid, PreconditionFailed, TooLarge
from cortex.kernel.ids import new_id
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.kernel.store import open_store
from cortex.registry.service import build
from tests.integration.registry.state_writers import write_values
from tests.integration.registry.test_registry_service import sample, started
from tests.support.polling import settled

AGENT = "0198a1b2-agent-one"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.effective_nats_url)
    yield client
    await client.close()


@pytest.fixture
def client(nc: NATS, settings: Settings) -> ServiceClient:
    return ServiceClient(nc, settings.subjects(), timeout=5)


@pytest.fixture
async def registry(settings: Settings, client: ServiceClient) -> AsyncIterator[ServiceRuntime]:
    runtime = await started(build(settings), client)
    yield runtime
    await runtime.stop()


class Watcher:
    """Collects every StateView announced for one agent."""

    def __init__(self) -> None:
        self.seen: list[StateView] = []

    async def on(self, msg: Msg) -> None:
        self.seen.append(msgspec.json.decode(msg.data, type=StateView))

    @classmethod
    async def start(cls, nc: NATS, settings: Settings, agent_id: str) -> Watcher:
        watcher = cls()
        await nc.subscribe(settings.subjects().state(agent_id), cb=watcher.on)
        await nc.flush()
        return watcher


async def get(client: ServiceClient, agent_id: str = AGENT) -> StateView:
    return await client.call("registry", "state.get", GetState(agent_id), StateView)


async def put(client: ServiceClient, value: Any, **fields: Any) -> StateWrite:
    cmd = PutState(
        agent_id=fields.pop("agent_id", AGENT), value=value, **{"writer": "w1", **fields}
    )
    return await client.call("registry", "state.put", cmd, StateWrite)


async def patch(client: ServiceClient, change: dict[str, Any], **fields: Any) -> StateWrite:
    cmd = PatchState(agent_id=AGENT, patch=change, **{"writer": "w1", **fields})
    return await client.call("registry", "state.patch", cmd, StateWrite)


async def history(client: ServiceClient, agent_id: str = AGENT) -> list[StateView]:
    found = await client.call("registry", "state.history", GetState(agent_id), StateHistory)
    return found.versions


def writes(outcome: str) -> float:
    return sample("cortex_registry_state_writes_total", {"outcome": outcome})


async def test_put_get_patch_and_history(
    registry: ServiceRuntime, client: ServiceClient, nc: NATS, settings: Settings
) -> None:
    assert await get(client) == StateView(agent_id=AGENT, version=0)
    assert await history(client) == []
    watcher = await Watcher.start(nc, settings, AGENT)
    applied, superseded = writes("applied"), writes("superseded")

    first = await put(client, {"a": 1}, written_at=1_000)
    assert first.applied
    assert (first.state.version, first.state.value) == (1, {"a": 1})
    assert (first.state.written_at, first.state.writer) == (1_000, "w1")
    assert first.state.updated_at is not None
    assert abs((datetime.now(UTC) - first.state.updated_at).total_seconds()) < 5

    patched = await patch(client, {"b": {"c": 2}}, writer="w2")
    assert patched.applied
    assert (patched.state.version, patched.state.value) == (2, {"a": 1, "b": {"c": 2}})
    assert patched.state.writer == "w2"
    assert patched.state.written_at > 1_000  # the registry's clock: it brought none

    # An unconditional write older than the current version loses, and says what is current.
    late = await put(client, "late", written_at=1)
    assert not late.applied
    assert late.state == patched.state
    assert await get(client) == patched.state
    assert [v.version for v in await history(client)] == [2, 1]
    assert (writes("applied") - applied, writes("superseded") - superseded) == (2, 1)

    await settled(lambda: asyncio.sleep(0, watcher.seen), lambda s: len(s) == 2)
    assert watcher.seen == [first.state, patched.state]

    for n in range(HISTORY + 3):
        await put(client, {"n": n})
    versions = await history(client)
    assert [v.version for v in versions] == list(range(HISTORY + 5, 4, -1))
    assert versions[0] == await get(client)
    assert versions[0].value == {"n": HISTORY + 2}


async def test_refusals_name_the_field_the_size_and_the_limit(
    registry: ServiceRuntime, client: ServiceClient
) -> None:
    with pytest.raises(Invalid) as caught:
        await put(client, 1, writer="")
    assert [v.field for v in caught.value.violations] == ["$.writer"]
    with pytest.raises(Invalid):
        await put(client, 1, agent_id="not.a.token")

    with pytest.raises(TooLarge) as too_large:
        await put(client, "x" * STATE_LIMIT)
    assert f"{STATE_LIMIT + 2} bytes" in too_large.value.message
    assert f"limit is {STATE_LIMIT} bytes" in too_large.value.message

    biggest = await put(client, {"s": "x" * (STATE_LIMIT - 8)})
    assert biggest.applied
    with pytest.raises(TooLarge):
        await patch(client, {"t": 1})
    assert (await get(client)).version == 1


async def test_two_writers_at_one_expected_version_one_wins_one_is_told_the_version(
    registry: ServiceRuntime, client: ServiceClient, settings: Settings
) -> None:
    other_nc = await nats.connect(settings.effective_nats_url)
    try:
        other = ServiceClient(other_nc, settings.subjects(), timeout=5)
        for round_ in range(5):
            current = (await get(client)).version
            results = await asyncio.gather(
                put(client, {"by": "a", "round": round_}, writer="a", expected_version=current),
                put(other, {"by": "b", "round": round_}, writer="b", expected_version=current),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, StateWrite)]
            lost = [r for r in results if isinstance(r, PreconditionFailed)]
            assert (len(won), len(lost)) == (1, 1), results
            assert won[0].applied
            assert won[0].state.version == current + 1
            assert lost[0].details["current_version"] == current + 1
            assert f"version {current + 1}" in lost[0].message
            assert (await get(client)).value == won[0].state.value
        # Patches race the same way.
        current = (await get(client)).version
        results = await asyncio.gather(
            patch(client, {"p": 1}, expected_version=current),
            patch(other, {"p": 2}, expected_version=current),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["PreconditionFailed", "StateWrite"]
    finally:
        await other_nc.close()


async def test_unconditional_writers_in_three_processes_converge_everywhere(
    settings: Settings, client: ServiceClient, nc: NATS
) -> None:
    agent_id = "racer"
    runtime = await started(build(settings), client)
    try:
        watcher = await Watcher.start(nc, settings, agent_id)
        spawn = multiprocessing.get_context("spawn")
        barrier = spawn.Barrier(3)
        results = spawn.Queue()
        # Clocks that disagree by a few milliseconds, as separate machines' do.
        skews = {"writer-a": 0, "writer-b": 3_000_000, "writer-c": -2_000_000}
        processes = [
            spawn.Process(
                target=write_values,
                args=(
                    settings.effective_nats_url,
                    settings.nats_prefix,
                    agent_id,
                    writer,
                    skew,
                    30,
                    barrier,
                    results,
                ),
            )
            for writer, skew in skews.items()
        ]
        for process in processes:
            process.start()
        reports = [await asyncio.to_thread(results.get, True, 60) for _ in processes]
        for process in processes:
            await asyncio.to_thread(process.join, 10)
        failed = [r for r in reports if isinstance(r, str)]
        assert not failed, failed
        done = [write for report in reports for write in report]
        assert len(done) == 90
        written_at, writer, value, _ = max(done, key=lambda w: (w[0], w[1]))
        assert any(applied for *_, applied in done)

        final = await get(client, agent_id)
        assert (final.value, final.written_at, final.writer) == (value, written_at, writer)
        heard = await settled(
            lambda: asyncio.sleep(0, watcher.seen), lambda s: bool(s) and s[-1] == final
        )
        # Applied versions only grow, and each was announced once, in order.
        assert [v.version for v in heard] == list(range(1, final.version + 1))
    finally:
        await runtime.stop()

    again = await started(build(settings), client)
    try:
        assert await get(client, agent_id) == final
    finally:
        await again.stop()


async def test_a_purged_agent_loses_its_state(
    registry: ServiceRuntime, client: ServiceClient, nc: NATS, settings: Settings
) -> None:
    subjects = settings.subjects()
    await put(client, {"keep": "me"})
    await patch(client, {"more": 1})
    watcher = await Watcher.start(nc, settings, AGENT)

    async def purge(agent_id: str) -> None:
        # As the lifecycle's relay publishes it: the envelope, with the event id as Msg-Id.
        envelope = EventEnvelope(
            event_id=new_id(),
            stream_id=f"agent-{agent_id}",
            stream_type="agent",
            version=7,
            position=42,
            type="agent.purged",
            data=msgspec.Raw(b"{}"),
            occurred_at=datetime.now(UTC),
            correlation_id="purge-1",
        )
        await nc.jetstream().publish(
            subjects.event("lifecycle", "agent.purged"),
            msgspec.json.encode(envelope),
            headers={headers.MSG_ID: envelope.event_id},
        )

    await purge(AGENT)
    await purge("never-written")
    gone = await settled(lambda: get(client), lambda v: v.version == 0)
    assert gone == StateView(agent_id=AGENT, version=0)
    assert await history(client) == []
    await settled(lambda: asyncio.sleep(0, watcher.seen), bool)
    assert watcher.seen == [StateView(agent_id=AGENT, version=0)]

    store = await open_store(settings.effective_store, "registry")
    try:
        events = await store.read(f"state-{AGENT}")
        assert [e.type for e in events] == ["state.written", "state.patched", "state.deleted"]
        assert msgspec.json.decode(events[-1].data)["reason"] == "agent purged"
        assert events[-1].correlation_id == "purge-1"
        assert await store.read("state-never-written") == []
    finally:
        await store.close()

    # Written again after the purge: a new document from version 1.
    again = await put(client, {"fresh": True})
    assert (again.applied, again.state.version) == (True, 1)
