"""Template topics: an agent created from a template with topics is subscribed to them, and a
purged agent loses every subscription.

A durable consumer on the events stream, filtered on the lifecycle's `agent.created` and
`agent.purged`, shared by every messaging replica (each event is handled once) and resuming after
a restart where the last one stopped. Events of one agent are handled in the order they were
published (a lock per agent, taken in arrival order), so a purge read right after the creation
does not race it.
"""

from __future__ import annotations

import msgspec
from nats.aio.msg import Msg

from cortex.contracts.events import EventEnvelope
from cortex.contracts.lifecycle import AgentCreated
from cortex.kernel.bus.consumer import DurableConsumer
from cortex.kernel.errors import Invalid
from cortex.kernel.ids import new_id
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.messaging.subscription_commands import SubscriptionCommands
from cortex.messaging.subscription_domain import check_agent_id, check_topic

DURABLE = "messaging-lifecycle"
CREATED = "agent.created"
PURGED = "agent.purged"

log = get_logger()


class LifecycleListener:
    def __init__(self, runtime: ServiceRuntime, commands: SubscriptionCommands) -> None:
        self._runtime = runtime
        self._commands = commands
        self._envelopes = msgspec.json.Decoder(EventEnvelope)
        self._created = msgspec.json.Decoder(AgentCreated)
        self._locks = KeyedLocks()
        self._consumer: DurableConsumer | None = None

    async def start(self) -> None:
        subjects = self._runtime.subjects
        self._consumer = DurableConsumer(
            self._runtime.nc,
            stream=subjects.events_stream,
            durable=DURABLE,
            filter_subjects=[
                subjects.event("lifecycle", CREATED),
                subjects.event("lifecycle", PURGED),
            ],
            handler=self.handle,
            concurrency=16,
            # Creations come in bursts but each is small; a short pull keeps the stop quick.
            fetch_wait=0.25,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop(self._runtime.settings.shutdown_grace)

    async def handle(self, msg: Msg) -> None:
        """Returning acks, raising redelivers later: only a failure to append raises, since an
        event that cannot be read will not read better next time."""
        try:
            envelope = self._envelopes.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable lifecycle event dropped", subject=msg.subject, error=str(exc))
            return
        agent_id = envelope.stream_id.removeprefix("agent-")
        try:
            check_agent_id(agent_id)
        except Invalid:
            log.warning("lifecycle event of a stream that is no agent", stream=envelope.stream_id)
            return
        correlation_id = envelope.correlation_id or new_id()
        ctx = Context(
            correlation_id=correlation_id,
            actor=envelope.actor,
            idempotency_key=None,
            log=log.bind(agent_id=agent_id, correlation_id=correlation_id),
        )
        async with self._locks.hold(agent_id):
            if envelope.type == CREATED:
                await self._created_agent(agent_id, envelope, ctx)
            elif envelope.type == PURGED:
                removed = await self._commands.remove_all(agent_id, ctx)
                if removed:
                    ctx.log.info("subscriptions of a purged agent removed", topics=removed)

    async def _created_agent(self, agent_id: str, envelope: EventEnvelope, ctx: Context) -> None:
        try:
            created = self._created.decode(envelope.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            ctx.log.warning("unreadable agent.created dropped", error=str(exc))
            return
        topics = []
        for topic in created.topics:
            try:
                topics.append(check_topic(topic))
            except Invalid:
                ctx.log.warning("template topic is not a valid topic; skipped", topic=topic)
        if not topics:
            return
        added = await self._commands.add_many(agent_id, topics, "template", ctx)
        if added:
            ctx.log.info("agent subscribed to its template's topics", topics=added)
