"""Agent messages: how they travel on `cortex.msg.agent.<id>` and how the API shows them.

On the wire a message is its payload bytes plus headers (below), so binary payloads need no
encoding. Anyone with NATS credentials may publish to an agent's inbox with these headers; only
`Nats-Msg-Id` is required (a unique id: JetStream drops a repeat within two minutes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from cortex.contracts.lifecycle import AgentStatus

ContentType = Literal["text/plain", "application/json", "application/octet-stream"]
SendStatus = Literal["accepted", "replied", "error", "acked", "dead_lettered"]

MSG_ID = "Nats-Msg-Id"
FROM = "Cortex-From"
"""Sender: an agent id, `api:<token name>`, or anything an outside publisher chooses."""
TO = "Cortex-To"
CONTENT_TYPE = "Cortex-Content-Type"
"""Defaults to `application/octet-stream` when absent."""
REPLY_TO = "Cortex-Reply-To"
"""A core NATS subject the receiver publishes its reply to (request/reply)."""
IN_REPLY_TO = "Cortex-In-Reply-To"
STATUS = "Cortex-Status"
"""On replies: `ok`, or `error` with the error text as the payload."""
CREATED_AT = "Cortex-Created-At"
"""ISO 8601, UTC."""
TOPIC = "Cortex-Topic"
"""On topic messages and their copies: the topic."""
ORIGIN_ID = "Cortex-Origin-Id"
"""On a subscriber's copy of a topic message: the topic message's id."""
CLAIM_CHECK = "Cortex-Claim-Check"
"""`<bucket>/<object>`: the payload is in the JetStream object store (over the inline limit)."""
PAYLOAD_SIZE = "Cortex-Payload-Size"
REPLAY_OF = "Cortex-Replay-Of"
"""On a message replayed from the dead-letter queue: the dead message's id."""
DELIVERIES = "Cortex-Deliveries"
DEAD_REASON = "Cortex-Dead-Reason"
LAST_ERROR = "Cortex-Last-Error"
DEAD_AT = "Cortex-Dead-At"
DEADLINE = "Cortex-Deadline"
"""ISO time after which the sender no longer wants the message handled (a request whose caller
gave up): a host acknowledges it without running the handler."""
USER_HEADER_PREFIX = "X-"
"""Headers of the sender's own start with `X-` and are passed through untouched."""


class SendMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/agents/{id}/messages`: the payload, as JSON.

    For `application/json` any JSON value; for `text/plain` a string; for
    `application/octet-stream` a base64 string.
    """

    payload: Any
    content_type: ContentType = "application/json"
    headers: dict[str, str] = {}
    """Extra headers; names must start with `X-`."""


class AgentMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    from_: str = msgspec.field(name="from")
    to: str
    content_type: ContentType
    payload: Any
    """JSON value, text, or base64 for binary, by `content_type`."""
    headers: dict[str, str] = {}
    created_at: datetime


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: SendStatus
    """accepted: persisted, nothing awaited; replied: `reply` holds the agent's answer;
    error: the agent's handler failed and said why in `error`; acked / dead_lettered: with
    `confirm`, what became of the message."""
    reply: AgentMessage | None = None
    error: str | None = None
    agent_status: AgentStatus | None = None
    """The receiving agent's status when the message was sent: in `created`, `terminating`,
    `terminated` or `failed` the message waits in its inbox until the agent is deployed."""
