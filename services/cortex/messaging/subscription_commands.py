"""Subscribing and unsubscribing: validate, decide on the agent's stream, append.

Used by the endpoints (source `runtime`) and by the lifecycle listener (template topics when an
agent is created, everything when it is purged).
"""

from __future__ import annotations

from collections.abc import Iterable

from cortex.contracts.messaging import Subscription
from cortex.kernel.aggregate import Repository
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.messaging import subscription_domain as domain
from cortex.messaging.subscription_domain import Source, Subscribed


class SubscriptionCommands:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._repo = Repository[Subscribed](
            runtime,
            domain.CODEC,
            stream_type=domain.STREAM_TYPE,
            initial=Subscribed,
            evolve=domain.evolve,
        )

    async def add(self, cmd: Subscription, ctx: Context | None) -> bool:
        """True when the subscription is new, False when it was already there."""
        domain.check_agent_id(cmd.agent_id)
        domain.check_topic(cmd.topic)
        return bool(await self.add_many(cmd.agent_id, [cmd.topic], "runtime", ctx))

    async def add_many(
        self, agent_id: str, topics: Iterable[str], source: Source, ctx: Context | None
    ) -> list[str]:
        """Subscribe to every topic at once (one append); returns the topics that were new."""
        wanted = list(topics)
        outcome = await self._repo.execute(
            domain.stream_id(agent_id),
            lambda state: domain.add(state, agent_id, wanted, source),
            ctx,
        )
        return [e.topic for e in outcome.events]  # type: ignore[attr-defined]

    async def remove(self, cmd: Subscription, ctx: Context | None) -> None:
        domain.check_agent_id(cmd.agent_id)
        domain.check_topic(cmd.topic)
        await self._repo.execute(
            domain.stream_id(cmd.agent_id),
            lambda state: domain.remove(state, cmd.agent_id, cmd.topic),
            ctx,
        )

    async def remove_all(self, agent_id: str, ctx: Context | None) -> list[str]:
        outcome = await self._repo.execute(
            domain.stream_id(agent_id), lambda state: domain.remove_all(state, agent_id), ctx
        )
        return [e.topic for e in outcome.events]  # type: ignore[attr-defined]
