"""When the lifecycle service purges an agent, its state goes too.

A durable consumer on the events stream, filtered on the lifecycle's `agent.purged`, shared by
every registry replica (each purge is handled once) and resuming after a restart where the last
one stopped, so a purge that happened while no registry ran is still carried out.
"""

from __future__ import annotations

import msgspec
from nats.aio.msg import Msg

from cortex.contracts.events import EventEnvelope
from cortex.kernel.bus.consumer import DurableConsumer
from cortex.kernel.errors import Invalid
from cortex.kernel.ids import new_id
from cortex.kernel.logging import get_logger
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.registry.state_domain import PURGED
from cortex.registry.state_writer import StateWriter

DURABLE = "registry-purges"

log = get_logger()


class PurgeListener:
    def __init__(self, runtime: ServiceRuntime, writer: StateWriter) -> None:
        self._runtime = runtime
        self._writer = writer
        self._decoder = msgspec.json.Decoder(EventEnvelope)
        self._consumer: DurableConsumer | None = None

    async def start(self) -> None:
        subjects = self._runtime.subjects
        self._consumer = DurableConsumer(
            self._runtime.nc,
            stream=subjects.events_stream,
            durable=DURABLE,
            filter_subjects=[subjects.event("lifecycle", "agent.purged")],
            handler=self.handle,
            concurrency=16,
            # Purges are rare; a short pull keeps the service's stop quick.
            fetch_wait=0.25,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop(self._runtime.settings.shutdown_grace)

    async def handle(self, msg: Msg) -> None:
        """Returning acks the message, raising redelivers it later: only a failure to write
        raises, since a message that cannot be read will not read better next time."""
        try:
            envelope = self._decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable purge event dropped", subject=msg.subject, error=str(exc))
            return
        agent_id = envelope.stream_id.removeprefix("agent-")
        if agent_id == envelope.stream_id:
            log.warning("purge event of a stream that is no agent", stream_id=envelope.stream_id)
            return
        correlation_id = envelope.correlation_id or new_id()
        ctx = Context(
            correlation_id=correlation_id,
            actor=envelope.actor,
            idempotency_key=None,
            log=log.bind(agent_id=agent_id, correlation_id=correlation_id),
        )
        try:
            deleted = await self._writer.delete(agent_id, PURGED, ctx)
        except Invalid as exc:
            log.warning("purge event of an unusable agent id", agent_id=agent_id, error=str(exc))
            return
        if deleted:
            ctx.log.info("state of a purged agent deleted")
