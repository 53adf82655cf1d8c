"""Fan-out: every topic message is copied into the inbox of each agent subscribed to its topic.

A durable consumer on the messages stream, filtered on `<root>.msg.topic.>`, pulled by the
messaging replica that holds the lease `messaging.fanout`. A topic message is acked only once
JetStream has acknowledged every copy; a failure naks it and the whole fan-out runs again
later. Copies carry a deterministic id (`<topic message id>_<agent id>`), so the copies that
had already been stored are dropped by JetStream's duplicate window instead of reaching an
inbox twice. Topic messages of one topic are fanned out in the order they were stored (a lock
per topic, taken in arrival order), topics in parallel.
"""

from __future__ import annotations

import asyncio
import time

from nats.aio.msg import Msg

from cortex.kernel.bus.consumer import DurableConsumer
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.messaging.metrics import FANOUT_COPIES, FANOUT_DURATION, TOPIC_MESSAGES
from cortex.messaging.subscription_projection import SubscriptionsProjection
from cortex.messaging.wire import Layout, copy_headers, message_id

DURABLE = "messaging-topics"
PUBLISH_BATCH = 256
"""Copies awaited at once: enough to hide the round trip, few enough not to flood the server
when a topic has thousands of subscribers."""
PUBLISH_TIMEOUT = 10.0

log = get_logger()


class Fanout:
    def __init__(self, runtime: ServiceRuntime, subscriptions: SubscriptionsProjection) -> None:
        self._runtime = runtime
        self._subscriptions = subscriptions
        self._layout = Layout(runtime.subjects)
        self._locks = KeyedLocks()
        self._consumer: DurableConsumer | None = None

    async def start(self) -> None:
        subjects = self._runtime.subjects
        self._consumer = DurableConsumer(
            self._runtime.nc,
            stream=subjects.messages_stream,
            durable=DURABLE,
            filter_subjects=[subjects.topic(">")],
            handler=self.handle,
            concurrency=64,
            # A quiet topic stream must not hold up the service's stop.
            fetch_wait=0.25,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop(self._runtime.settings.shutdown_grace)

    async def handle(self, msg: Msg) -> None:
        topic = self._layout.topic(msg.subject)
        if topic is None:
            log.warning("message of no topic on the topic consumer", subject=msg.subject)
            return
        async with self._locks.hold(topic):
            started = time.perf_counter()
            # A subscription made on another replica a moment ago may not be applied here yet.
            await self._runtime.catch_up()
            headers = dict(msg.headers or {})
            topic_id = message_id(headers, msg.metadata.sequence.stream)
            subscribers = self._subscriptions.subscribers(topic)
            for i in range(0, len(subscribers), PUBLISH_BATCH):
                batch = subscribers[i : i + PUBLISH_BATCH]
                await asyncio.gather(
                    *(self._copy(msg.data, headers, topic, topic_id, a) for a in batch)
                )
            TOPIC_MESSAGES.inc()
            FANOUT_DURATION.observe(time.perf_counter() - started)
            log.debug("topic message fanned out", topic=topic, id=topic_id, copies=len(subscribers))

    async def _copy(
        self, data: bytes, headers: dict[str, str], topic: str, topic_id: str, agent_id: str
    ) -> None:
        await self._runtime.js.publish(
            self._runtime.subjects.agent_inbox(agent_id),
            data,
            headers=copy_headers(headers, topic, topic_id, agent_id),
            timeout=PUBLISH_TIMEOUT,
        )
        FANOUT_COPIES.inc()
