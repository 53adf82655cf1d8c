"""An agent's subscriptions as an event-sourced aggregate: pure state and decisions.

Stream `subscriptions-<agent_id>`, events `SubscriptionAdded` / `SubscriptionRemoved`. Nothing
here does I/O; `subscription_commands.py` loads, decides and appends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from cortex.contracts.messaging import TOPIC_PATTERN, SubscriptionAdded, SubscriptionRemoved
from cortex.kernel.errors import Invalid, NotFound
from cortex.kernel.events import EventCodec

CODEC = EventCodec(SubscriptionAdded, SubscriptionRemoved)
STREAM_TYPE = "subscription"
STREAM_PREFIX = "subscriptions-"

Source = Literal["template", "runtime"]
SubscriptionEvent = SubscriptionAdded | SubscriptionRemoved

_TOPIC = re.compile(TOPIC_PATTERN)
_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class Subscribed(msgspec.Struct):
    topics: dict[str, Source] = {}
    """topic -> how the subscription came about."""


def stream_id(agent_id: str) -> str:
    return f"{STREAM_PREFIX}{agent_id}"


def agent_of(stream: str) -> str | None:
    return stream[len(STREAM_PREFIX) :] if stream.startswith(STREAM_PREFIX) else None


def check_topic(topic: str, field: str = "$.topic") -> str:
    if not _TOPIC.match(topic):
        raise Invalid.field(field, "a topic is dot-separated words of letters, digits, '-' and '_'")
    return topic


def check_agent_id(agent_id: str, field: str = "$.agent_id") -> str:
    # Copies go to the agent's inbox subject: the id must be one subject token.
    if not _AGENT_ID.match(agent_id):
        raise Invalid.field(field, "an agent id is letters, digits, '-' and '_'")
    return agent_id


def evolve(state: Subscribed, event: Any) -> Subscribed:
    if isinstance(event, SubscriptionAdded):
        return Subscribed(topics={**state.topics, event.topic: event.source})
    if isinstance(event, SubscriptionRemoved):
        return Subscribed(topics={t: s for t, s in state.topics.items() if t != event.topic})
    return state


def add(
    state: Subscribed, agent_id: str, topics: Iterable[str], source: Source = "runtime"
) -> list[SubscriptionEvent]:
    """Subscribe to each topic not yet subscribed; one already there is left as it is."""
    events: list[SubscriptionEvent] = []
    seen = set(state.topics)
    for topic in topics:
        if topic not in seen:
            seen.add(topic)
            events.append(SubscriptionAdded(agent_id=agent_id, topic=topic, source=source))
    return events


def remove(state: Subscribed, agent_id: str, topic: str) -> list[SubscriptionEvent]:
    if topic not in state.topics:
        raise NotFound(f"agent {agent_id} is not subscribed to {topic}")
    return [SubscriptionRemoved(agent_id=agent_id, topic=topic)]


def remove_all(state: Subscribed, agent_id: str) -> list[SubscriptionEvent]:
    """What a purge of the agent does."""
    return [SubscriptionRemoved(agent_id=agent_id, topic=t) for t in sorted(state.topics)]
