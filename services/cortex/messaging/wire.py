"""Reading the platform's message headers (`cortex.contracts.messages`) into index entries and
dead-letter summaries, and the ids this service derives from them.

Pure functions of a subject, its headers and its stream sequence, so they are the same whether a
message comes from an ordered consumer (headers only) or a direct get.
"""

from __future__ import annotations

import re
from datetime import datetime

from cortex.contracts import messages as m
from cortex.contracts.messages import ContentType
from cortex.contracts.messaging import DeadLetter, StatusUpdate
from cortex.contracts.subjects import Subjects, safe_token
from cortex.kernel.ids import utcnow
from cortex.messaging.message_index import Indexed

SIZE = "Nats-Msg-Size"
"""Added by the server to a headers-only delivery: the size of the payload left out."""
NATS_PREFIX = "Nats-"
DEAD_HEADERS = frozenset({m.DELIVERIES, m.DEAD_REASON, m.LAST_ERROR, m.DEAD_AT})
"""What an agent host adds to a message when it dead-letters it."""
DEAD_PREFIX = "dead-"
"""Agent hosts publish a dead letter with `Nats-Msg-Id: dead-<original id>`."""

_CONTENT_TYPES: frozenset[str] = frozenset(
    {"text/plain", "application/json", "application/octet-stream"}
)
_REPLAYED = re.compile(r"^(?P<base>.+)-r(?P<n>[0-9]+)$")


class Layout:
    """Where a subject of the messages or dead-letter stream points."""

    def __init__(self, subjects: Subjects) -> None:
        root = subjects.root
        self._inbox = f"{root}.msg.agent."
        self._topic = f"{root}.msg.topic."
        self._dlq = f"{root}.dlq."

    def inbox_agent(self, subject: str) -> str | None:
        """`<root>.msg.agent.<partition>.<agent_id>` (as stored) -> the agent id."""
        if not subject.startswith(self._inbox):
            return None
        return subject.rsplit(".", 1)[-1]

    def topic(self, subject: str) -> str | None:
        """`<root>.msg.topic.<topic...>` -> the topic (which may hold dots)."""
        if not subject.startswith(self._topic):
            return None
        return subject[len(self._topic) :] or None

    def dead_letter_agent(self, subject: str) -> str | None:
        if not subject.startswith(self._dlq):
            return None
        return subject[len(self._dlq) :] or None


def message_id(headers: dict[str, str], seq: int) -> str:
    """A message's id; one published without `Nats-Msg-Id` is named by its stream sequence, so
    that every reader (and a fan-out repeated after a crash) names it the same."""
    return headers.get(m.MSG_ID) or f"seq-{seq}"


def content_type(headers: dict[str, str]) -> ContentType:
    value = headers.get(m.CONTENT_TYPE, "application/octet-stream")
    return value if value in _CONTENT_TYPES else "application/octet-stream"  # type: ignore[return-value]


def timestamp(value: str | None, fallback: datetime | None) -> datetime:
    if value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return fallback or utcnow()


def payload_size(headers: dict[str, str], fallback: int = 0) -> int:
    """A claim-checked message carries its real size; a headers-only delivery the size of the
    payload it left out; otherwise the payload we hold."""
    for name in (m.PAYLOAD_SIZE, SIZE):
        value = headers.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return fallback


def indexed(
    layout: Layout,
    subject: str,
    headers: dict[str, str],
    seq: int,
    stored_at: datetime | None = None,
) -> Indexed | None:
    """A message of the messages stream as an index entry; None for a subject that is neither
    an inbox nor a topic."""
    topic = layout.topic(subject)
    agent_id = None if topic is not None else layout.inbox_agent(subject)
    if topic is None and agent_id is None:
        return None
    origin = headers.get(m.ORIGIN_ID)
    if topic is not None:
        kind = "topic"
    elif origin:
        kind = "copy"
        topic = headers.get(m.TOPIC)
    else:
        kind = "direct"
    return Indexed(
        seq=seq,
        id=message_id(headers, seq),
        kind=kind,  # type: ignore[arg-type]
        sender=headers.get(m.FROM, "unknown"),
        to=agent_id,
        topic=topic,
        origin_id=origin if kind == "copy" else None,
        content_type=content_type(headers),
        size=payload_size(headers),
        created_at=timestamp(headers.get(m.CREATED_AT), stored_at),
        replay_of=headers.get(m.REPLAY_OF),
    )


def user_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith(m.USER_HEADER_PREFIX)}


def dead_letter(
    layout: Layout,
    subject: str,
    headers: dict[str, str],
    seq: int,
    stored_at: datetime | None = None,
    size: int = 0,
) -> DeadLetter | None:
    """A message of the dead-letter stream, without its payload."""
    agent_id = layout.dead_letter_agent(subject)
    if agent_id is None:
        return None
    try:
        deliveries = int(headers.get(m.DELIVERIES, "0"))
    except ValueError:
        deliveries = 0
    dead_at = timestamp(headers.get(m.DEAD_AT), stored_at)
    return DeadLetter(
        id=message_id(headers, seq).removeprefix(DEAD_PREFIX),
        agent_id=agent_id,
        from_=headers.get(m.FROM, "unknown"),
        content_type=content_type(headers),
        size=payload_size(headers, size),
        deliveries=deliveries,
        reason=headers.get(m.DEAD_REASON, "unknown"),
        last_error=headers.get(m.LAST_ERROR),
        created_at=timestamp(headers.get(m.CREATED_AT), stored_at),
        dead_at=dead_at,
        headers=user_headers(headers),
    )


def dead_report(letter: DeadLetter) -> StatusUpdate:
    """A dead letter as a status report: the message it holds was given up on, even when the
    host's own report was lost."""
    return StatusUpdate(
        msg_id=letter.id,
        agent_id=letter.agent_id,
        status="dead_lettered",
        delivery=letter.deliveries,
        host_id="dlq",
        at=letter.dead_at,
        error=letter.last_error,
    )


def copy_id(topic_msg_id: str, agent_id: str) -> str:
    """The id of a topic message's copy in one inbox: deterministic, so that a fan-out repeated
    after a crash is dropped by JetStream's duplicate window."""
    return f"{safe_token(topic_msg_id)}_{agent_id}"


def replay_id(dead_id: str) -> str:
    """`<id>-r1` for a first replay; a replayed message that died again goes on as `-r2`. The
    same dead letter always gives the same id, so a replay retried after a crash between the
    publish and the delete is dropped as a duplicate."""
    again = _REPLAYED.match(dead_id)
    if again:
        return f"{safe_token(again['base'])}-r{int(again['n']) + 1}"
    return f"{safe_token(dead_id)}-r1"


def copy_headers(
    headers: dict[str, str], topic: str, topic_msg_id: str, agent_id: str
) -> dict[str, str]:
    """A topic message's headers as its copy in one subscriber's inbox carries them."""
    kept = {k: v for k, v in headers.items() if not k.startswith(NATS_PREFIX)}
    kept[m.TOPIC] = topic
    kept[m.ORIGIN_ID] = topic_msg_id
    kept[m.TO] = agent_id
    kept[m.MSG_ID] = copy_id(topic_msg_id, agent_id)
    return kept


def replay_headers(headers: dict[str, str], new_id: str, dead_id: str) -> dict[str, str]:
    """The original headers, without what the dead-lettering added or the server owns."""
    kept = {
        k: v for k, v in headers.items() if k not in DEAD_HEADERS and not k.startswith(NATS_PREFIX)
    }
    kept[m.MSG_ID] = new_id
    kept[m.REPLAY_OF] = dead_id
    return kept
