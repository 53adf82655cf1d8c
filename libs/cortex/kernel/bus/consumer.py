"""Durable pull consumers: the one way the platform reads a JetStream stream with acks.

A handler that returns acks the message; one that raises naks it with a growing delay, so a
failing message does not spin. Messages are handled concurrently up to `concurrency`; the
durable's position lives on the server, so a restarted process resumes where the last left off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

Handler = Callable[[Msg], Awaitable[None]]

FETCH_WAIT = 1.0
"""How long one pull waits for messages by default; also the longest a stop waits for the
pull to end. A quiet consumer that must stop fast asks for less (more idle pulls)."""


def nak_delay(deliveries: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Delay before redelivering a message that failed `deliveries` times: 0.5 s, 1 s, 2 s..."""
    return float(min(cap, base * 2 ** max(0, deliveries - 1)))


class DurableConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        filter_subjects: Sequence[str],
        handler: Handler,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        ack_wait: float = 30.0,
        max_deliver: int = -1,
        concurrency: int = 64,
        fetch_wait: float = FETCH_WAIT,
    ) -> None:
        self._js = js
        self.stream = stream
        self.durable = durable
        self._config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=max(concurrency * 4, 256),
            filter_subjects=list(filter_subjects) if len(filter_subjects) > 1 else None,
            filter_subject=filter_subjects[0] if len(filter_subjects) == 1 else None,
        )
        self._handler = handler
        self._ack_wait = ack_wait
        self._fetch_wait = fetch_wait
        self._concurrency = concurrency
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = False

    async def start(self) -> None:
        # Create-or-update: a changed filter or limit takes effect without a manual step.
        await self._js.add_consumer(self.stream, self._config)
        sub = await self._js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._sub = sub
        self._task = asyncio.create_task(self._pull(sub), name=f"consumer-{self.durable}")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching, let in-flight handlers finish (up to `grace`), then return.

        The pull in progress is allowed to end rather than cancelled: messages the server is
        already sending to it would otherwise sit unacknowledged for a whole `ack_wait`
        before another consumer could get them. What arrives after the stop is nak'ed at once.
        """
        self._stopping = True
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self._fetch_wait + 1)
            except TimeoutError:
                await cancel_and_wait(self._task)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace)
        if self._sub:
            await _quietly(self._sub.unsubscribe())

    def stopped(self) -> bool:
        return self._stopping

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self.stopped():
            free = self._concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await sub.fetch(batch=free, timeout=self._fetch_wait)
            except (NatsTimeoutError, TimeoutError):
                continue
            except ConnectionClosedError:
                log.info("consumer stopped: connection closed", consumer=self.durable)
                return
            except Exception as exc:
                log.warning("fetch failed", consumer=self.durable, error=str(exc) or repr(exc))
                await asyncio.sleep(0.5)
                continue
            if self.stopped():  # the stop came while this pull waited
                for msg in msgs:
                    await _quietly(msg.nak())
                return
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _handle(self, msg: Msg) -> None:
        # A handler may take longer than ack_wait (an LLM call, a queue behind a busy
        # replica): keep telling the server the message is in progress so it is not
        # redelivered to someone else meanwhile.
        keepalive = asyncio.create_task(self._keep_alive(msg))
        try:
            await self._handler(msg)
        except Exception as exc:
            deliveries = msg.metadata.num_delivered if msg.metadata else 1
            log.warning(
                "handler failed; redelivering later",
                consumer=self.durable,
                subject=msg.subject,
                deliveries=deliveries,
                error=str(exc) or repr(exc),
            )
            await _quietly(msg.nak(delay=nak_delay(deliveries)))
            return
        finally:
            keepalive.cancel()
        await _quietly(msg.ack())

    async def _keep_alive(self, msg: Msg) -> None:
        every = max(0.5, self._ack_wait / 3)
        while True:
            await asyncio.sleep(every)
            await _quietly(msg.in_progress())


async def _quietly(op: Awaitable[None]) -> None:
    # An ack lost to a reconnect is redelivered by the server; nothing to do here.
    try:
        await op
    except Exception as exc:
        log.debug("ack not sent", error=str(exc) or repr(exc))
