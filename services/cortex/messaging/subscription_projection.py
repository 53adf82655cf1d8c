"""Who is subscribed to what: agent -> topics, and the derived topic -> agents the fan-out asks.

Built only from subscription events; the topic side is derived, so it is rebuilt after a
restore rather than snapshotted.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.messaging import (
    SubscriptionAdded,
    SubscriptionRemoved,
    SubscriptionView,
    TopicView,
)
from cortex.kernel.projection import StructProjection
from cortex.messaging.subscription_domain import CODEC, Source, agent_of


class Held(msgspec.Struct):
    source: Source
    created_at: datetime


class Subscriptions(msgspec.Struct):
    agents: dict[str, dict[str, Held]] = {}


class SubscriptionsProjection(StructProjection[Subscriptions]):
    name = "messaging-subscriptions"
    version = 1
    model_type = Subscriptions

    def __init__(self) -> None:
        super().__init__()
        self._topics: dict[str, set[str]] = {}
        self._count = 0

    # --- folding ---------------------------------------------------------------------------

    def apply(self, event: EventEnvelope) -> None:
        agent_id = agent_of(event.stream_id)
        if agent_id is None:
            return
        data = CODEC.decode(event)
        if isinstance(data, SubscriptionAdded):
            held = self.model.agents.setdefault(agent_id, {})
            if data.topic not in held:
                held[data.topic] = Held(data.source, event.occurred_at)
                self._topics.setdefault(data.topic, set()).add(agent_id)
                self._count += 1
        elif isinstance(data, SubscriptionRemoved):
            held = self.model.agents.get(agent_id, {})
            if held.pop(data.topic, None) is not None:
                self._count -= 1
                subscribers = self._topics.get(data.topic)
                if subscribers is not None:
                    subscribers.discard(agent_id)
                    if not subscribers:
                        del self._topics[data.topic]
            if not held:
                self.model.agents.pop(agent_id, None)

    def restore(self, data: bytes) -> None:
        super().restore(data)
        self._reindex()

    def reset(self) -> None:
        super().reset()
        self._reindex()

    def _reindex(self) -> None:
        self._topics = {}
        self._count = 0
        for agent_id, held in self.model.agents.items():
            for topic in held:
                self._topics.setdefault(topic, set()).add(agent_id)
                self._count += 1

    # --- reading ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Subscriptions of every agent to every topic."""
        return self._count

    def subscribers(self, topic: str) -> list[str]:
        return sorted(self._topics.get(topic, ()))

    def of_agent(self, agent_id: str) -> list[SubscriptionView]:
        held = self.model.agents.get(agent_id, {})
        return [_view(agent_id, t, held[t]) for t in sorted(held)]

    def of_topic(self, topic: str) -> list[SubscriptionView]:
        return [_view(a, topic, self.model.agents[a][topic]) for a in self.subscribers(topic)]

    def all(self) -> list[SubscriptionView]:
        return [v for agent_id in sorted(self.model.agents) for v in self.of_agent(agent_id)]

    def topics(self) -> list[TopicView]:
        return [TopicView(topic=t, subscribers=len(a)) for t, a in sorted(self._topics.items())]


def _view(agent_id: str, topic: str, held: Held) -> SubscriptionView:
    return SubscriptionView(
        agent_id=agent_id, topic=topic, source=held.source, created_at=held.created_at
    )
