"""Handing a message to the host that runs its agent, over a real nats-server: a request or an
answer lost on the way (a nats-server node died) must not hold the message for the whole
hand-over timeout, and a handler that runs long must not be taken for a lost one."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from cortex.contracts import messages as m
from cortex.contracts.subjects import Subjects
from cortex.host.dispatch import (
    HANDOVER_SILENCE,
    AgentNotHere,
    Dispatcher,
    HandlerFailed,
)
from cortex.host.handled import HandledIds
from cortex.kernel.bus.streams import ensure_buckets

AGENT = "a-1"


@pytest.fixture
async def dispatcher(nc: NATS, js: JetStreamContext, subjects: Subjects) -> Dispatcher:
    await ensure_buckets(js, subjects)
    handled = HandledIds(await js.key_value(subjects.dedupe_bucket))
    # Far above the silence: a test that waited for it would fail on its own bound below.
    return Dispatcher(nc, js, subjects, "host-a", handled, handover_timeout=600)


def inbox_message(nc: NATS) -> Msg:
    """As the inbox consumer got it: first delivery of stream sequence 1."""
    return Msg(
        nc,
        subject=f"inbox.{AGENT}",
        reply="$JS.ACK.CORTEX_MSGS.inbox-0.1.1.1.1700000000000000000.0",
        data=b"hello",
        headers={m.MSG_ID: "msg-1"},
    )


async def test_no_host_running_the_agent_is_known_at_once(dispatcher: Dispatcher, nc: NATS) -> None:
    async with asyncio.timeout(HANDOVER_SILENCE):
        with pytest.raises(AgentNotHere):
            await dispatcher._hand_over(AGENT, inbox_message(nc))


async def test_a_request_lost_on_the_way_fails_after_a_silence_not_the_timeout(
    dispatcher: Dispatcher, nc: NATS, subjects: Subjects
) -> None:
    taken: list[Msg] = []

    async def swallow(msg: Msg) -> None:  # a host whose answer never arrives
        taken.append(msg)

    await nc.subscribe(subjects.deliver(AGENT), cb=swallow)
    async with asyncio.timeout(HANDOVER_SILENCE * 3):
        with pytest.raises(HandlerFailed, match="did not answer"):
            await dispatcher._hand_over(AGENT, inbox_message(nc))
    assert len(taken) == 1


async def test_a_handler_that_runs_longer_than_the_silence_is_waited_for(
    dispatcher: Dispatcher, nc: NATS, js: JetStreamContext, subjects: Subjects
) -> None:
    handled = HandledIds(await js.key_value(subjects.dedupe_bucket))
    other = Dispatcher(nc, js, subjects, "host-b", handled)
    hosts: set[asyncio.Task[None]] = set()

    async def slow_host(msg: Msg) -> None:
        # The other host's own "still working" notes, for longer than a silence.
        assert msg.reply
        working = asyncio.create_task(other._say_working(msg.reply))
        await asyncio.sleep(HANDOVER_SILENCE * 1.6)
        working.cancel()
        await nc.publish(msg.reply, b"", headers={m.STATUS: "ok"})

    async def serve(msg: Msg) -> None:
        task = asyncio.create_task(slow_host(msg))
        hosts.add(task)
        task.add_done_callback(hosts.discard)

    await nc.subscribe(subjects.deliver(AGENT), cb=serve)
    async with asyncio.timeout(HANDOVER_SILENCE * 4):
        await dispatcher._hand_over(AGENT, inbox_message(nc))
