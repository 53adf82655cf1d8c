"""The messaging service over a real nats-server and a real SQLite store, with messages, status
reports and dead letters published exactly as the platform's publishers and agent hosts do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeliveryOutcome, StatusUpdate
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import NotFound, Unavailable
from cortex.kernel.ids import utcnow
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.messaging.service import build

T = TypeVar("T")


async def started(runtime: ServiceRuntime, client: ServiceClient) -> ServiceRuntime:
    """Start the service and wait until its index is read and it answers (a request right after
    the start now and then meets "no responders" for a millisecond: waited out)."""
    await runtime.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            await client.call("messaging", "message.get", {"id": "none"}, object)
        except NotFound:
            # Another replica already running may have answered: this one's index counts.
            if runtime.readiness()["index"]:
                return runtime
        except Unavailable:
            pass
        assert time.monotonic() < deadline, "the messaging replica never got ready"
        await asyncio.sleep(0.01)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def subjects(settings: Settings) -> Subjects:
    return settings.subjects()


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.effective_nats_url)
    yield client
    await client.close()


@pytest.fixture
async def js(nc: NATS, subjects: Subjects) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
def client(nc: NATS, subjects: Subjects) -> ServiceClient:
    return ServiceClient(nc, subjects, timeout=5)


@pytest.fixture
async def messaging(
    settings: Settings, client: ServiceClient, js: JetStreamContext
) -> AsyncIterator[ServiceRuntime]:
    runtime = await started(build(settings), client)
    yield runtime
    await runtime.stop()


class Host:
    """Reports on deliveries and dead-letters messages as an agent host does."""

    def __init__(self, nc: NATS, subjects: Subjects, host_id: str = "h1") -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects
        self.host_id = host_id

    async def report(
        self,
        agent_id: str,
        msg_id: str,
        status: DeliveryOutcome,
        delivery: int = 1,
        error: str | None = None,
    ) -> None:
        update = StatusUpdate(
            msg_id=msg_id,
            agent_id=agent_id,
            status=status,
            delivery=delivery,
            host_id=self.host_id,
            at=utcnow(),
            error=error,
        )
        await self.nc.publish(
            self.subjects.msg_status(agent_id, msg_id), msgspec.json.encode(update)
        )
        await self.nc.flush()

    async def dead_letter(
        self, agent_id: str, delivered: Msg, *, reason: str, last_error: str | None
    ) -> None:
        """Keep the message as it came, plus why it died (what the host's dispatcher does)."""
        headers = dict(delivered.headers or {})
        msg_id = headers[m.MSG_ID]
        headers.update(
            {
                m.MSG_ID: f"dead-{msg_id}",
                m.DELIVERIES: "3",
                m.DEAD_REASON: reason,
                m.DEAD_AT: utcnow().isoformat(),
            }
        )
        if last_error:
            headers[m.LAST_ERROR] = last_error
        await self.js.publish(
            self.subjects.dead_letter(agent_id), delivered.data, headers=headers, timeout=5
        )


@pytest.fixture
def host(nc: NATS, subjects: Subjects) -> Host:
    return Host(nc, subjects)


async def stored(js: JetStreamContext, stream: str, subject: str) -> list[Msg]:
    """Every message the stream holds on `subject` (a wildcard is fine), oldest first."""
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
    got: list[Msg] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except NatsTimeoutError:  # nothing (more) on the subject
                return got
            got.append(msg)
            if msg.metadata.num_pending == 0:
                return got
    finally:
        await sub.unsubscribe()
