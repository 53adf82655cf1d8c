"""The dead-letter queue: dead letters published as an agent host publishes them, then listed,
read, replayed into the agent's inbox and deleted through `ServiceClient`."""

from __future__ import annotations

import msgspec
import pytest
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeadLetter, DeadLetterPage, MessageRecord, Replayed
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import NotFound
from cortex.kernel.messages import send_to_agent
from cortex.kernel.service import ServiceRuntime
from tests.integration.messaging.conftest import Host, stored
from tests.support.polling import settled


async def dead_message(
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
    agent_id: str,
    payload: object,
    last_error: str | None = "ValueError: bad",
) -> str:
    """Send a message to the agent, take it from the inbox as the host got it, dead-letter it."""
    msg_id = await send_to_agent(
        js,
        subjects,
        agent_id,
        payload if isinstance(payload, bytes) else msgspec.json.encode(payload),
        content_type="application/json" if not isinstance(payload, bytes) else "text/plain",
        sender="sender-1",
        extra_headers={"X-Order": "42"},
    )
    inbox = await stored(js, subjects.messages_stream, subjects.stored_inbox(agent_id))
    delivered = next(i for i in inbox if (i.headers or {}).get(m.MSG_ID) == msg_id)
    await host.report(agent_id, msg_id, "dead_lettered", 3, last_error)
    await host.dead_letter(
        agent_id, delivered, reason="its handler failed in all 3 deliveries", last_error=last_error
    )
    return msg_id


async def dlq_list(client: ServiceClient, **query: object) -> DeadLetterPage:
    return await client.call("messaging", "dlq.list", query, DeadLetterPage)


async def test_list_and_get_dead_letters(
    messaging: ServiceRuntime,
    client: ServiceClient,
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
) -> None:
    first = await dead_message(js, subjects, host, "a1", {"n": 1})
    second = await dead_message(js, subjects, host, "a2", b"plain", last_error=None)
    third = await dead_message(js, subjects, host, "a1", {"n": 3})

    page = await settled(lambda: dlq_list(client), lambda p: p.total == 3)
    assert [d.id for d in page.items] == [first, second, third]
    listed = page.items[0]
    assert (listed.agent_id, listed.from_, listed.deliveries, listed.last_error) == (
        "a1",
        "sender-1",
        3,
        "ValueError: bad",
    )
    assert listed.payload is None
    assert listed.reason == "its handler failed in all 3 deliveries"
    mine = await dlq_list(client, agent_id="a1", limit=1)
    assert ([d.id for d in mine.items], mine.total, mine.next) == ([first], 2, first)
    rest = await dlq_list(client, agent_id="a1", after=first)
    assert ([d.id for d in rest.items], rest.next) == ([third], None)

    letter = await client.call("messaging", "dlq.get", {"id": first}, DeadLetter)
    assert (letter.payload, letter.headers, letter.content_type) == (
        {"n": 1},
        {"X-Order": "42"},
        "application/json",
    )
    assert letter.size == len(b'{"n":1}')
    text = await client.call("messaging", "dlq.get", {"id": second}, DeadLetter)
    assert (text.payload, text.last_error) == ("plain", None)

    record = await client.call("messaging", "message.get", {"id": first}, MessageRecord)
    assert (record.status, record.deliveries, record.last_error) == (
        "dead_lettered",
        3,
        "ValueError: bad",
    )
    assert record.dead_lettered_at is not None
    with pytest.raises(NotFound):
        await client.call("messaging", "dlq.get", {"id": "nope"}, DeadLetter)


async def test_a_replay_lands_in_the_inbox_and_the_dead_letter_is_gone(
    messaging: ServiceRuntime,
    client: ServiceClient,
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
) -> None:
    dead_id = await dead_message(js, subjects, host, "a1", {"n": 1})
    await settled(lambda: dlq_list(client), lambda p: p.total == 1)
    seq = (await js.get_last_msg(subjects.dead_letter_stream, subjects.dead_letter("a1"))).seq

    replayed = await client.call("messaging", "dlq.replay", {"id": dead_id}, Replayed)
    assert (replayed.id, replayed.replay_of) == (f"{dead_id}-r1", dead_id)

    inbox = await stored(js, subjects.messages_stream, subjects.stored_inbox("a1"))
    assert [(i.headers or {})[m.MSG_ID] for i in inbox] == [dead_id, replayed.id]
    again = inbox[-1]
    headers = again.headers or {}
    assert again.data == b'{"n":1}'
    assert headers[m.REPLAY_OF] == dead_id
    assert (headers[m.FROM], headers["X-Order"], headers[m.CONTENT_TYPE]) == (
        "sender-1",
        "42",
        "application/json",
    )
    for dead_header in (m.DELIVERIES, m.DEAD_REASON, m.LAST_ERROR, m.DEAD_AT):
        assert dead_header not in headers

    with pytest.raises(NotFoundError):
        await js.get_msg(subjects.dead_letter_stream, seq)
    assert (await dlq_list(client)).total == 0
    with pytest.raises(NotFound):
        await client.call("messaging", "dlq.get", {"id": dead_id}, DeadLetter)
    with pytest.raises(NotFound):
        await client.call("messaging", "dlq.replay", {"id": dead_id}, Replayed)

    record = await settled(
        lambda: client.call("messaging", "message.get", {"id": replayed.id}, MessageRecord),
        lambda r: True,
    )
    assert (record.kind, record.status, record.to) == ("direct", "accepted", "a1")


async def test_delete_a_dead_letter(
    messaging: ServiceRuntime,
    client: ServiceClient,
    js: JetStreamContext,
    subjects: Subjects,
    host: Host,
) -> None:
    keep = await dead_message(js, subjects, host, "a1", {"n": 1})
    drop = await dead_message(js, subjects, host, "a1", {"n": 2})
    await settled(lambda: dlq_list(client), lambda p: p.total == 2)

    deleted = await client.call("messaging", "dlq.delete", {"id": drop}, DeadLetter)
    assert deleted.id == drop
    assert [d.id for d in (await dlq_list(client)).items] == [keep]
    with pytest.raises(NotFound):
        await client.call("messaging", "dlq.delete", {"id": drop}, DeadLetter)
    with pytest.raises(NotFound):
        await client.call("messaging", "dlq.get", {"id": drop}, DeadLetter)
    remaining = await stored(js, subjects.dead_letter_stream, subjects.dead_letter("a1"))
    assert [(r.headers or {})[m.MSG_ID] for r in remaining] == [f"dead-{keep}"]
