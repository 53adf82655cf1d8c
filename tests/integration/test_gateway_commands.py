"""Changes through the gateway to replicas of the lifecycle service, in this process: the same
`Idempotency-Key` makes one change, an event too large for the bus is refused before it is
stored, and an event that no longer decodes is skipped and listed in `/api/v1/status`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import msgspec
import nats.js.errors
import pytest

from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.kernel.store import NewEvent
from cortex.lifecycle.service import build
from tests.support.polling import settled

TOKEN = "cxt_gateway_commands_token"


@dataclass
class Platform:
    api: httpx.AsyncClient
    gateway: Gateway
    replicas: list[ServiceRuntime]


@pytest.fixture
async def platform(make_settings: Callable[..., Settings]) -> AsyncIterator[Platform]:
    settings = make_settings(admin_token=TOKEN)
    replicas = [build(settings), build(settings)]
    for replica in replicas:
        await replica.start()
    gateway = Gateway(settings)
    await gateway.start({})
    transport = httpx.ASGITransport(app=create_app(gateway))
    api = httpx.AsyncClient(
        transport=transport,
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )

    async def connected() -> bool:
        return gateway.readiness()["nats"]

    try:
        await settled(connected, bool, timeout=10)
        yield Platform(api, gateway, replicas)
    finally:
        await api.aclose()
        await gateway.stop()
        for replica in replicas:
            await replica.stop()


async def test_the_same_idempotency_key_creates_one_agent_and_answers_alike(
    platform: Platform,
) -> None:
    api = platform.api
    body = {"name": "scout", "template": "echo"}
    key = {"Idempotency-Key": "create-scout-1"}
    # At once, through both lifecycle replicas (the queue group spreads the requests).
    first, *again = await asyncio.gather(
        *(api.post("/api/v1/agents", json=body, headers=key) for _ in range(4))
    )
    assert first.status_code == 201, first.text
    assert all((r.status_code, r.json()) == (201, first.json()) for r in again)
    # And later, as a client's retry would come.
    retry = await api.post("/api/v1/agents", json=body, headers=key)
    assert (retry.status_code, retry.json()) == (201, first.json())

    listing = (await api.get("/api/v1/agents")).json()
    assert [a["name"] for a in listing["items"]] == ["scout"]
    # Without the key a second create is a second attempt, refused for the name.
    assert (await api.post("/api/v1/agents", json=body)).status_code == 409

    other = await api.post(
        "/api/v1/agents", json={"name": "other", "template": "echo"}, headers=key
    )
    assert other.status_code == 409
    assert "already used with a different request" in other.json()["detail"]
    assert other.json()["details"] == {"idempotency_key": "create-scout-1"}

    too_long = await api.post("/api/v1/agents", json=body, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_an_event_larger_than_the_bus_carries_is_refused_and_nothing_is_stored(
    platform: Platform,
) -> None:
    api = platform.api
    lifecycle = platform.replicas[0]
    # Each half fits in a message; the agent's merged config does not.
    half = "x" * (lifecycle.nc.max_payload * 6 // 10)
    template = {
        "name": "big",
        "handler": "tests.support.sample_agents:Recorder",
        "default_config": {"a": half},
    }
    assert (await api.post("/api/v1/templates", json=template)).status_code == 201, "template"
    before = await lifecycle.store.last_position()

    refused = await api.post(
        "/api/v1/agents", json={"name": "huge", "template": "big", "config": {"b": half}}
    )
    assert refused.status_code == 413, refused.text
    problem = refused.json()
    assert problem["code"] == "too_large"
    assert problem["details"]["field"] == "$.config"
    assert "event agent.created would be" in problem["detail"]
    assert "the bus carries: $.config is" in problem["detail"]
    assert await lifecycle.store.last_position() == before

    # What comes after is stored and published as usual.
    made = await api.post("/api/v1/agents", json={"name": "small", "template": "echo"})
    assert made.status_code == 201, made.text
    js = lifecycle.js
    subject = lifecycle.subjects.event("lifecycle", "agent.created")

    async def published() -> bytes:
        try:
            msg = await js.get_last_msg(lifecycle.subjects.events_stream, subject)
        except nats.js.errors.NotFoundError:
            return b""
        return msg.data or b""

    envelope = await settled(published, lambda data: b'"small"' in data, timeout=10)
    assert msgspec.json.decode(envelope)["stream_id"] == f"agent-{made.json()['id']}"


async def test_an_event_that_no_longer_decodes_is_skipped_counted_and_listed_in_status(
    platform: Platform,
) -> None:
    api = platform.api
    created = await api.post("/api/v1/agents", json={"name": "scout", "template": "echo"})
    assert created.status_code == 201, created.text
    stream = f"agent-{created.json()['id']}"
    lifecycle = platform.replicas[0]
    broken = NewEvent(
        type="agent.scaled", stream_type="agent", data=b'{"replicas": "many", "previous": 1}'
    )
    await lifecycle.store.append(stream, [broken], None)

    # The agent's aggregate passes over it and appends after it; the read models skip it.
    scaled = await api.post("/api/v1/agents/scout/scale", json={"replicas": 2})
    assert scaled.status_code == 202, scaled.text
    stored = await lifecycle.store.read(stream)
    assert [e.event_id == broken.event_id for e in stored][-2:] == [True, False]
    assert (await api.get("/api/v1/agents/scout")).json()["replicas"] == 2

    status = (await api.get("/api/v1/status")).json()
    [service] = [s for s in status["services"] if s["name"] == "lifecycle"]
    [listed] = service["quarantined"]
    assert listed["event_id"] == broken.event_id
    assert (listed["type"], listed["stream_id"]) == ("agent.scaled", stream)
    assert "Expected `int`, got `str`" in listed["error"]
    assert all("quarantined" not in i["metadata"] for i in service["instances"])
