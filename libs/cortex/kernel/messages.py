"""Agent messages on JetStream: publishing to an inbox and reading a delivered message.

Shared by the gateway (messages from the API), the SDK (agents sending to agents) and the agent
host (delivering to handlers), so that all three agree on the headers in `contracts.messages`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from opentelemetry.trace import SpanKind

from cortex.contracts import messages as m
from cortex.contracts.messages import AgentMessage, ContentType
from cortex.contracts.messaging import TOPIC_PATTERN, StatusUpdate
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.publish import publish_durably
from cortex.kernel.context import outgoing
from cortex.kernel.errors import Invalid, Timeout, TooLarge
from cortex.kernel.ids import new_id, utcnow
from cortex.kernel.tracing import span

PUBLISH_WITHIN = 10.0
"""Seconds a send keeps trying while its stream has no leader (a cluster electing one)."""

INLINE_LIMIT = 1024 * 1024
"""Largest payload sent inline; bigger ones travel by claim check through the object store."""
MAX_PAYLOAD = 64 * 1024 * 1024
"""Largest payload at all."""
TOPIC = re.compile(TOPIC_PATTERN)
USER_HEADER_NAME = r"^X-[-!#$%&'*+.^_`|~0-9A-Za-z]*$"
"""A sender's own header: `X-` and the rest of a header name (an HTTP token, as NATS takes)."""
_USER_HEADER = re.compile(USER_HEADER_NAME)


@dataclass(frozen=True, slots=True)
class Message:
    """A message as a handler sees it."""

    id: str
    sender: str
    to: str
    content_type: ContentType
    payload: bytes
    created_at: datetime
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """The sender's own `X-` headers."""
    delivery: int = 1
    """1 on first delivery, more on redeliveries."""
    claim_check: str | None = None
    """Set while the payload is still in the object store (see `claimed_payload`)."""
    wire_headers: dict[str, str] = field(default_factory=dict)
    """Every header as it came (for dead letters, which keep the message as it was)."""
    deadline: datetime | None = None
    """Past this, the sender no longer wants it handled."""

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return msgspec.json.decode(self.payload)

    def value(self) -> Any:
        """The payload as its content type says: JSON value, text, or bytes."""
        if self.content_type == "application/json":
            return self.json()
        if self.content_type == "text/plain":
            return self.text
        return self.payload

    def to_view(self) -> AgentMessage:
        return AgentMessage(
            id=self.id,
            from_=self.sender,
            to=self.to,
            content_type=self.content_type,
            payload=payload_for_api(self.content_type, self.payload),
            headers=self.headers,
            created_at=self.created_at,
        )


def encode_payload(
    value: Any, content_type: ContentType | None = None
) -> tuple[bytes, ContentType]:
    """A Python value as payload bytes: bytes go as they are (binary unless a content type is
    given, e.g. JSON that is already encoded), str is text, the rest JSON."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), content_type or "application/octet-stream"
    if content_type is None:
        content_type = "text/plain" if isinstance(value, str) else "application/json"
    if content_type == "application/octet-stream":
        raise Invalid.field("$.payload", "binary payloads must be bytes")
    if content_type == "text/plain":
        if not isinstance(value, str):
            raise Invalid.field("$.payload", "text/plain payloads must be a string")
        return value.encode(), content_type
    try:
        return msgspec.json.encode(value), content_type
    except TypeError as exc:
        raise Invalid.field("$.payload", f"not JSON-encodable: {exc}") from None


def payload_from_api(value: Any, content_type: ContentType) -> bytes:
    """The payload of `SendMessage` (JSON value, text, or base64) as bytes."""
    if content_type == "application/octet-stream":
        if not isinstance(value, str):
            raise Invalid.field("$.payload", "application/octet-stream payloads are base64 text")
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise Invalid.field("$.payload", "not valid base64") from None
    return encode_payload(value, content_type)[0]


def payload_for_api(content_type: str, payload: bytes) -> Any:
    if content_type == "application/json":
        try:
            return msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return payload.decode(errors="replace")
    if content_type == "text/plain":
        return payload.decode(errors="replace")
    return base64.b64encode(payload).decode()


def message_headers(
    *,
    msg_id: str,
    sender: str,
    to: str,
    content_type: str,
    reply_to: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {
        m.MSG_ID: msg_id,
        m.FROM: sender,
        m.TO: to,
        m.CONTENT_TYPE: content_type,
        m.CREATED_AT: utcnow().isoformat(),
    }
    if reply_to:
        headers[m.REPLY_TO] = reply_to
    for name, value in (extra or {}).items():
        if not name.startswith(m.USER_HEADER_PREFIX):
            raise Invalid.field(f"$.headers.{name}", "own headers must start with X-")
        if not _USER_HEADER.fullmatch(name):
            raise Invalid.field(
                f"$.headers.{name}",
                "a header name is letters, digits and !#$%&'*+-.^_`|~ only",
            )
        headers[name] = value
    return headers


async def send_to_agent(
    js: JetStreamContext,
    subjects: Subjects,
    agent_id: str,
    payload: bytes,
    *,
    content_type: ContentType,
    sender: str,
    reply_to: str | None = None,
    extra_headers: dict[str, str] | None = None,
    msg_id: str | None = None,
    deadline: datetime | None = None,
) -> str:
    """Persist a message in the agent's inbox; returns its id once JetStream has it. Past
    `deadline` a host acknowledges it without running the handler."""
    headers = dict(extra_headers or {})
    return await _publish(
        js,
        subjects,
        subjects.agent_inbox(agent_id),
        payload,
        content_type=content_type,
        sender=sender,
        to=agent_id,
        reply_to=reply_to,
        extra_headers=headers,
        msg_id=msg_id,
        deadline=deadline,
    )


async def request_agent(
    nc: NATS,
    js: JetStreamContext,
    subjects: Subjects,
    agent_id: str,
    payload: bytes,
    *,
    content_type: ContentType,
    sender: str,
    timeout: float | None = None,
    msg_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
    deadline: datetime | None = None,
) -> Msg:
    """A request through the agent's inbox (persisted like any message) with a core NATS
    subject for the reply; the reply as it came (`reply_error` tells a failed handler). Raises
    `TimeoutError` after `timeout` seconds; the request stays in the inbox and is still handled,
    but its reply has nobody left to go to (also when the caller is cancelled)."""
    inbox = nc.new_inbox()
    answer: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

    async def on_reply(msg: Msg) -> None:
        if not answer.done():
            answer.set_result(msg)

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await send_to_agent(
            js,
            subjects,
            agent_id,
            payload,
            content_type=content_type,
            sender=sender,
            reply_to=inbox,
            extra_headers=extra_headers,
            msg_id=msg_id,
            deadline=deadline,
        )
        async with asyncio.timeout(timeout):
            return await answer
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def reply_error(reply: Msg) -> str | None:
    """What the handler failed with, if the reply says it failed."""
    if (reply.headers or {}).get(m.STATUS) == "error":
        return reply.data.decode(errors="replace")
    return None


async def publish_to_topic(
    js: JetStreamContext,
    subjects: Subjects,
    topic: str,
    payload: bytes,
    *,
    content_type: ContentType,
    sender: str,
    extra_headers: dict[str, str] | None = None,
    msg_id: str | None = None,
) -> str:
    """Persist a topic message; the messaging service copies it to every subscriber."""
    if not TOPIC.match(topic):
        raise Invalid.field("topic", "letters, digits, '-', '_' and dots only")
    return await _publish(
        js,
        subjects,
        subjects.topic(topic),
        payload,
        content_type=content_type,
        sender=sender,
        to=f"topic:{topic}",
        extra_headers=extra_headers,
        msg_id=msg_id,
        topic=topic,
    )


async def _publish(
    js: JetStreamContext,
    subjects: Subjects,
    subject: str,
    payload: bytes,
    *,
    content_type: ContentType,
    sender: str,
    to: str,
    reply_to: str | None = None,
    extra_headers: dict[str, str] | None = None,
    msg_id: str | None = None,
    topic: str | None = None,
    deadline: datetime | None = None,
) -> str:
    ident = msg_id or new_id()
    headers = message_headers(
        msg_id=ident,
        sender=sender,
        to=to,
        content_type=content_type,
        reply_to=reply_to,
        extra=extra_headers,
    )
    if topic:
        headers[m.TOPIC] = topic
    if deadline:
        headers[m.DEADLINE] = deadline.isoformat()
    with span(
        f"send {'topic' if topic else 'agent'} message",
        SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": subject,
            "messaging.message.id": ident,
        },
    ):
        # The receiver's handler carries on this correlation and trace (`context.incoming`).
        outgoing(headers)
        payload = await stash_if_large(js, subjects, ident, payload, headers)
        await publish_durably(js, subject, payload, headers, within=PUBLISH_WITHIN)
    return ident


async def stash_if_large(
    js: JetStreamContext, subjects: Subjects, name: str, payload: bytes, headers: dict[str, str]
) -> bytes:
    """Claim check: a payload over the inline limit goes to the object store and the message
    carries its name (in `headers`, updated here); returns what the message itself carries."""
    if len(payload) <= INLINE_LIMIT:
        return payload
    if len(payload) > MAX_PAYLOAD:
        raise TooLarge(
            f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD} byte limit",
            details={"size": len(payload), "limit": MAX_PAYLOAD},
        )
    store = await js.object_store(subjects.payload_bucket)
    await store.put(name, payload)
    headers[m.CLAIM_CHECK] = f"{subjects.payload_bucket}/{name}"
    headers[m.PAYLOAD_SIZE] = str(len(payload))
    return b""


async def claimed_payload(js: JetStreamContext, message: Message) -> Message:
    """The message with its payload fetched from the object store, if it came by claim check."""
    if not message.claim_check:
        return message
    bucket, _, name = message.claim_check.partition("/")
    store = await js.object_store(bucket)
    result = await store.get(name)
    return dataclasses.replace(message, payload=bytes(result.data or b""), claim_check=None)


def read_message(msg: Msg, agent_id: str) -> Message:
    """A delivered JetStream (or forwarded core NATS) message as a `Message`."""
    headers = msg.headers or {}
    created = headers.get(m.CREATED_AT)
    try:
        created_at = datetime.fromisoformat(created) if created else utcnow()
    except ValueError:
        created_at = utcnow()
    content_type = headers.get(m.CONTENT_TYPE, "application/octet-stream")
    if content_type not in ("text/plain", "application/json", "application/octet-stream"):
        content_type = "application/octet-stream"
    delivery = 1
    try:
        if msg.metadata:
            delivery = msg.metadata.num_delivered
    except Exception:  # a forwarded core NATS message has no JetStream metadata
        delivery = int(headers.get("Cortex-Delivery", "1"))
    return Message(
        id=headers.get(m.MSG_ID) or new_id(),
        sender=headers.get(m.FROM, "unknown"),
        to=agent_id,
        content_type=content_type,  # type: ignore[arg-type]
        payload=msg.data,
        created_at=created_at,
        reply_to=headers.get(m.REPLY_TO),
        headers={k: v for k, v in headers.items() if k.startswith(m.USER_HEADER_PREFIX)},
        delivery=delivery,
        claim_check=headers.get(m.CLAIM_CHECK),
        wire_headers=dict(headers),
        deadline=_when(headers.get(m.DEADLINE)),
    )


def _when(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def confirmation(
    nc: NATS, subjects: Subjects, msg_id: str
) -> AsyncIterator[Callable[[float], Awaitable[str]]]:
    """Listen for what becomes of a message before sending it (or the answer could be missed):

    async with confirmation(nc, subjects, msg_id) as outcome:
        await send_to_agent(..., msg_id=msg_id)
        status = await outcome(30.0)   # "acked" or "dead_lettered"; Timeout otherwise
    """
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_status(msg: Msg) -> None:
        update = msgspec.json.decode(msg.data, type=StatusUpdate)
        if update.status in ("acked", "skipped", "dead_lettered") and not done.done():
            done.set_result("dead_lettered" if update.status == "dead_lettered" else "acked")

    sub = await nc.subscribe(subjects.msg_status_of(msg_id), cb=on_status)

    async def outcome(timeout: float) -> str:
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            raise Timeout(
                f"message {msg_id} was not acknowledged within {timeout:g}s; it stays "
                "in the inbox and will still be delivered",
                details={"message_id": msg_id},
            ) from None

    try:
        yield outcome
    finally:
        await sub.unsubscribe()
