"""The messaging service: message status and history, topics and subscriptions, dead letters.

Messages travel in JetStream (`cortex.contracts.messages`); agent hosts report what happens to
each one on `cortex.msgstatus.<agent_id>.<message_id>` (stream `CORTEX_MSGSTATUS`); the
messaging service indexes both, fans topic messages out to subscribers' inboxes, and manages
the dead-letter stream `CORTEX_DLQ`. Requests go to `cortex.messaging.<verb>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from cortex.contracts.messages import ContentType
from cortex.contracts.names import PageSize

MessageStatus = Literal["accepted", "delivered", "acked", "dead_lettered"]
"""accepted: persisted in the inbox; delivered: a replica got it (perhaps more than once);
acked: a handler succeeded; dead_lettered: given up on, kept in the dead-letter queue."""

DeadLetterState = Literal["kept", "replayed", "purged"]
"""What became of a dead-lettered message's dead letter: kept in the dead-letter queue (`GET
/api/v1/dlq/{id}` shows it), replayed into its agent's inbox as a new message (`replayed_as`),
or purged (deleted, or aged out of the queue)."""

MessageKind = Literal["direct", "topic", "copy"]
"""direct: to one agent; topic: published to a topic; copy: a topic message's copy in one
subscriber's inbox (its `origin_id` is the topic message)."""

TOPIC_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"

DeliveryOutcome = Literal["delivered", "acked", "failed", "dead_lettered", "skipped"]
"""failed: this delivery's handler raised (the message comes back later); skipped: a
redelivery of a message the agent had already handled (effectively-once)."""


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent host reports about one delivery of one message."""

    msg_id: str
    agent_id: str
    status: DeliveryOutcome
    delivery: int
    host_id: str
    at: datetime
    error: str | None = None


class MessageRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: MessageKind
    from_: str = msgspec.field(name="from")
    to: str | None = None
    """The receiving agent's id (direct messages and copies)."""
    topic: str | None = None
    origin_id: str | None = None
    content_type: ContentType
    size: int
    status: MessageStatus
    deliveries: int = 0
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    acked_at: datetime | None = None
    dead_lettered_at: datetime | None = None
    copies: int = 0
    """For a topic message: the subscribers it was copied to."""
    dead_letter: DeadLetterState | None = None
    """For a dead-lettered message: what became of its dead letter."""
    replayed_as: str | None = None
    """For a replayed dead letter: the id of the new message in the agent's inbox."""


class GetMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`message.get`: the record of one message by id."""

    id: str


class ListMessages(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`message.list`: an agent's recent messages, newest first."""

    agent_id: str
    direction: Literal["in", "out", "both"] = "in"
    limit: PageSize = 100
    before: str | None = None
    """`next` of the previous page."""


class MessagePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MessageRecord]
    next: str | None = None


# --- topics and subscriptions --------------------------------------------------------------


class Subscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`subscription.add` / `subscription.remove`."""

    agent_id: str
    topic: str


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    topic: str
    source: Literal["template", "runtime"]
    created_at: datetime


class ListSubscriptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`subscription.list`: by agent, or by topic (its subscribers)."""

    agent_id: str | None = None
    topic: str | None = None


class TopicView(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    subscribers: int


class ListTopics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`topic.list`: every topic with at least one subscriber."""


class SubscriptionAdded(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "subscription.added"
    agent_id: str
    topic: str
    source: Literal["template", "runtime"] = "runtime"


class SubscriptionRemoved(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "subscription.removed"
    agent_id: str
    topic: str


# --- dead letters -------------------------------------------------------------------------------


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The dead message's own id."""
    agent_id: str
    from_: str = msgspec.field(name="from")
    content_type: ContentType
    size: int
    deliveries: int
    reason: str
    """Why it was given up: its handler kept failing, or nobody acknowledged it."""
    last_error: str | None = None
    created_at: datetime
    dead_at: datetime
    payload: Any = None
    """Only in `dlq.get`: JSON value, text or base64, by content type."""
    headers: dict[str, str] = {}


class ListDeadLetters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`dlq.list`, oldest first."""

    agent_id: str | None = None
    limit: PageSize = 100
    after: str | None = None


class DeadLetterArrived(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/v1/dlq/events`: a message was put in the dead-letter queue."""

    seq: int
    """Its place in `CORTEX_DLQ`; a reconnecting client's `Last-Event-ID`."""
    agent_id: str
    """The agent it was for."""
    reason: str
    """Why it was given up (as `DeadLetter.reason`)."""
    at: datetime
    """When it was stored in the queue."""


class DeadLetterPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeadLetter]
    total: int
    next: str | None = None


class DeadLetterRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`dlq.get`, `dlq.replay`, `dlq.delete`."""

    id: str


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The new message's id in the agent's inbox."""
    replay_of: str
