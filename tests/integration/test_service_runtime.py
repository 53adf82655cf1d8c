"""The service runtime, driven over a real nats-server exactly as the gateway drives services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from cortex.contracts.events import QuarantinedEvent
from cortex.contracts.replies import Reply
from cortex.kernel.bus.discovery import scatter
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import Conflict, Internal, Invalid, NotFound, Timeout, Unavailable
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.kernel.store import NewEvent, open_store
from tests.support.demo_service import CODEC, Echoed, NoteAdded, Notes, build
from tests.support.polling import settled


async def raw_request(nc: NATS, subject: str) -> Any:
    """A bare NATS request, asked again if it races the endpoint's subscription: a request
    from another connection just after a subscribe can see no responders (nats-server #2876);
    ServiceClient does the same."""
    for pause in (0.05, 0.2, None):
        try:
            return await nc.request(subject, b"{}", timeout=5)
        except nats.errors.NoRespondersError:
            if pause is None:
                raise
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


@pytest.fixture
async def runtime(make_settings: Callable[..., Settings]) -> AsyncIterator[ServiceRuntime]:
    rt = build(make_settings())
    await rt.start()
    yield rt
    await rt.stop()


@pytest.fixture
async def nc(make_settings: Callable[..., Settings]) -> AsyncIterator[NATS]:
    client = await nats.connect(make_settings().effective_nats_url)
    yield client
    await client.close()


@pytest.fixture
def client(nc: NATS, runtime: ServiceRuntime) -> ServiceClient:
    return ServiceClient(nc, runtime.subjects, timeout=5)


async def test_a_command_gets_its_typed_result(client: ServiceClient) -> None:
    got = await client.call("demo", "echo", {"text": "ab", "times": 2}, Echoed)
    assert got == Echoed(text="abab", replica="r1")


async def test_a_bad_body_is_refused_naming_the_field(client: ServiceClient) -> None:
    with pytest.raises(Invalid) as caught:
        await client.call("demo", "echo", {"text": "a", "times": "two"}, Echoed)
    assert caught.value.violations[0].field == "$.times"
    with pytest.raises(Invalid) as caught:
        await client.call("demo", "echo", {}, Echoed)
    assert caught.value.violations[0].field == "$.text"
    with pytest.raises(Invalid) as caught:
        await client.call("demo", "echo", b"{not json", Echoed)
    assert caught.value.violations[0].field == "$"


async def test_domain_errors_keep_their_code(client: ServiceClient) -> None:
    with pytest.raises(NotFound, match="no entry 'k'"):
        await client.call("demo", "lookup", {"key": "k"}, str)


async def test_an_unexpected_failure_never_puts_internals_on_the_wire(
    nc: NATS, runtime: ServiceRuntime
) -> None:
    msg = await raw_request(nc, runtime.subjects.command("demo", "crash"))
    assert b"hunter2" not in msg.data
    assert b"Traceback" not in msg.data
    reply = msgspec.json.decode(msg.data, type=Reply)
    assert reply.error is not None
    assert reply.error.code == "internal"
    assert "correlation id" in reply.error.message
    assert msg.headers
    assert msg.headers["Nats-Service-Error-Code"] == "internal"


async def test_idempotency_key_gives_the_first_reply_without_a_second_effect(
    client: ServiceClient,
) -> None:
    first = await client.call("demo", "note.add", {"note": "a"}, Notes, idempotency_key="k1")
    again = await client.call("demo", "note.add", {"note": "a"}, Notes, idempotency_key="k1")
    assert first == again == Notes(notes=["a"])
    assert await client.call("demo", "notes", {}, Notes) == Notes(notes=["a"])
    with pytest.raises(Conflict, match="different request"):
        await client.call("demo", "note.add", {"note": "b"}, Notes, idempotency_key="k1")
    concurrent = await asyncio.gather(
        *(
            client.call("demo", "note.add", {"note": "c"}, Notes, idempotency_key="k2")
            for _ in range(5)
        )
    )
    assert all(r == concurrent[0] for r in concurrent)
    assert (await client.call("demo", "notes", {}, Notes)).notes == ["a", "c"]


async def test_read_models_reflect_a_command_in_its_reply_and_survive_a_restart(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    settings = make_settings()
    first = build(settings)
    await first.start()
    client = ServiceClient(nc, first.subjects)
    await client.call("demo", "note.add", {"note": "x"}, Notes)
    await client.call("demo", "note.add", {"note": "y"}, Notes)
    await first.stop()

    second = build(settings)
    await second.start()
    try:
        assert await client.call("demo", "notes", {}, Notes) == Notes(notes=["x", "y"])
        await second.rebuild_projections()
        assert await client.call("demo", "notes", {}, Notes) == Notes(notes=["x", "y"])
    finally:
        await second.stop()


async def test_replicas_share_the_load_through_the_queue_group(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    settings = make_settings()
    replicas = [build(settings, replica="r1"), build(settings, replica="r2")]
    for r in replicas:
        await r.start()
    try:
        client = ServiceClient(nc, replicas[0].subjects)
        seen = {
            (await client.call("demo", "echo", {"text": "x"}, Echoed)).replica for _ in range(40)
        }
        assert seen == {"r1", "r2"}
        infos = [
            i
            for i in await scatter(nc, "$SRV.INFO")
            if i["name"] == replicas[0].subjects.service_name("demo")
        ]
        assert len(infos) == 2
        assert {e["subject"] for e in infos[0]["endpoints"]} >= {
            f"{settings.nats_prefix}.demo.echo",
            f"{settings.nats_prefix}.demo.note.add",
        }
        assert infos[0]["metadata"]["store"] == "sqlite"
    finally:
        for r in replicas:
            await r.stop()


async def test_stopping_finishes_in_flight_requests_then_refuses_new_ones(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    rt = build(make_settings())
    await rt.start()
    client = ServiceClient(nc, rt.subjects, timeout=5)
    slow = asyncio.create_task(client.call("demo", "sleep", {"seconds": 0.5}, str))
    await asyncio.sleep(0.1)
    await rt.stop()
    assert await slow == "slept"
    with pytest.raises(Unavailable, match="demo service is not running"):
        await client.call("demo", "echo", {"text": "x"}, Echoed)


async def test_admin_port_serves_health_readiness_and_metrics(
    runtime: ServiceRuntime, client: ServiceClient
) -> None:
    await client.call("demo", "echo", {"text": "x"}, Echoed)
    with pytest.raises(Internal):
        await client.call("demo", "crash", {}, str)
    async with httpx.AsyncClient(base_url=runtime.admin_url or "") as http:
        assert (await http.get("/health")).json()["status"] == "ok"
        ready = await http.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "ready": True,
            "checks": {"nats": True, "caught_up": True, "serving": True},
        }
        text = (await http.get("/metrics")).text
    assert 'cortex_service_requests_total{code="ok",endpoint="echo",service="demo"}' in text
    assert 'code="internal",endpoint="crash"' in text
    assert "cortex_nats_connected 1.0" in text


async def test_stats_report_requests_and_errors_per_endpoint(
    nc: NATS, runtime: ServiceRuntime, client: ServiceClient
) -> None:
    for _ in range(3):
        await client.call("demo", "echo", {"text": "x"}, Echoed)
    with pytest.raises(NotFound):
        await client.call("demo", "lookup", {"key": "k"}, str)
    stats = [
        s
        for s in await scatter(nc, "$SRV.STATS")
        if s["name"] == runtime.subjects.service_name("demo")
    ]
    endpoints = {e["name"]: e["data"] for e in stats[0]["endpoints"]}
    assert endpoints["echo"]["requests"] == 3
    assert endpoints["echo"]["errors"] == 0
    assert endpoints["lookup"]["errors"] == 1


async def test_replicas_on_one_store_apply_a_keyed_command_once(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    settings = make_settings()
    replicas = [build(settings, replica="r1"), build(settings, replica="r2")]
    for r in replicas:
        await r.start()
    try:
        client = ServiceClient(nc, replicas[0].subjects, timeout=10)
        rounds = 8
        for round_ in range(rounds):
            key = f"note-{round_}"
            # Sent at once, they reach both replicas (the queue group spreads them) and stay
            # in the handler long enough for both to be in it together.
            replies = await asyncio.gather(
                *(
                    client.call(
                        "demo", "note.add", {"note": key, "pause": 0.05}, Notes, idempotency_key=key
                    )
                    for _ in range(4)
                )
            )
            assert all(r == replies[0] for r in replies), round_
            assert replies[0].notes.count(key) == 1
        stored = await replicas[0].store.read("notes")
        assert [CODEC.decode(e).note for e in stored] == [f"note-{i}" for i in range(rounds)]
        served = [
            {e["name"]: e["data"]["requests"] for e in s["endpoints"]}["note-add"]
            for s in await scatter(nc, "$SRV.STATS")
            if s["name"] == replicas[0].subjects.service_name("demo")
        ]
        assert len(served) == 2
        assert all(served), f"one replica got every request: {served}"
    finally:
        for r in replicas:
            await r.stop()


async def test_a_command_applied_whose_reply_was_lost_is_not_applied_again(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    # The first replica stops (its grace too short for the command) after appending and
    # before its reply is recorded: as a crash would leave it.
    first = build(make_settings(shutdown_grace=0.2))
    await first.start()
    body = {"note": "once", "linger": 30}
    gone = asyncio.create_task(
        ServiceClient(nc, first.subjects, timeout=3).call(
            "demo", "note.add", body, Notes, idempotency_key="k"
        )
    )
    await settled(lambda: first.store.read("notes"), lambda events: len(events) == 1, timeout=5)
    await first.stop()
    with pytest.raises(Timeout):
        await gone

    second = build(make_settings(request_timeout=1.0))
    await second.start()
    try:
        client = ServiceClient(nc, second.subjects, timeout=5)
        with pytest.raises(Conflict, match="was applied, but its reply was lost") as caught:
            await client.call("demo", "note.add", body, Notes, idempotency_key="k")
        assert caught.value.details == {"idempotency_key": "k"}
        assert len(await second.store.read("notes")) == 1
        with pytest.raises(Conflict, match="different request"):
            await client.call("demo", "note.add", {"note": "other"}, Notes, idempotency_key="k")
    finally:
        await second.stop()


async def test_a_stored_event_that_does_not_decode_is_quarantined_and_the_service_serves(
    make_settings: Callable[..., Settings], nc: NATS
) -> None:
    settings = make_settings()
    store = await open_store(settings.effective_store, "demo")
    kept = CODEC.new(NoteAdded("kept"), stream_type="note")
    broken = NewEvent(type="note.added", stream_type="note", data=b'{"text": 1}')
    await store.append("notes", [kept, broken], None)
    await store.close()

    def counted() -> float:
        labels = {"service": "demo", "type": "note.added"}
        return REGISTRY.get_sample_value("cortex_events_quarantined_total", labels) or 0.0

    before = counted()
    rt = build(settings)
    await rt.start()
    try:
        client = ServiceClient(nc, rt.subjects)
        assert await client.call("demo", "notes", {}, Notes) == Notes(notes=["kept"])
        [bad] = rt.quarantined
        assert (bad.event_id, bad.type, bad.stream_id, bad.position, bad.reader) == (
            broken.event_id,
            "note.added",
            "notes",
            2,
            "projection notes",
        )
        assert "missing required field `note`" in bad.error

        # While serving: an event of a later release of the service (a newer version).
        newer = NewEvent(
            type="note.added", stream_type="note", data=b'{"note": "later"}', schema_version=2
        )
        await rt.store.append("notes", [newer], None)
        added = await client.call("demo", "note.add", {"note": "after"}, Notes)
        assert added == Notes(notes=["kept", "after"])
        assert [q.event_id for q in rt.quarantined] == [broken.event_id, newer.event_id]
        assert "reads versions 1 to 1" in rt.quarantined[1].error
        assert counted() - before == 2

        [info] = [
            i
            for i in await scatter(nc, "$SRV.INFO")
            if i["name"] == rt.subjects.service_name("demo")
        ]
        listed = info["metadata"]["quarantined"]
        assert msgspec.json.decode(listed, type=list[QuarantinedEvent]) == rt.quarantined
    finally:
        await rt.stop()
