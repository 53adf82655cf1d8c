"""Agent messages on JetStream: publishing to an inbox and reading a delivered message.

Shared by the gateway (messages from the API), the SDK (agents sending to agents) and the agent
host (delivering to handlers), so that all three agree on the headers in `contracts.messages`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from cortex.contracts import messages as m
from cortex.contracts.messages import AgentMessage, ContentType
from cortex.contracts.subjects import Subjects
from cortex.kernel.errors import Invalid, TooLarge
from cortex.kernel.ids import new_id, utcnow

INLINE_LIMIT = 1024 * 1024
"""Largest payload sent inline (bigger ones travel by claim check in a later version)."""


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
) -> str:
    """Persist a message in the agent's inbox; returns its id once JetStream has it."""
    if len(payload) > INLINE_LIMIT:
        raise TooLarge(f"payload of {len(payload)} bytes is over the {INLINE_LIMIT} byte limit")
    ident = msg_id or new_id()
    headers = message_headers(
        msg_id=ident,
        sender=sender,
        to=agent_id,
        content_type=content_type,
        reply_to=reply_to,
        extra=extra_headers,
    )
    await js.publish(subjects.agent_inbox(agent_id), payload, headers=headers, timeout=5)
    return ident


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
    )
