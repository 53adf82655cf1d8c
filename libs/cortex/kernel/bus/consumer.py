"""Durable pull consumers: the one way the platform reads a JetStream stream with acks.

A handler that returns acks the message; one that raises naks it with a growing delay, so a
failing message does not spin. Messages are handled concurrently up to `concurrency`; the
durable's position lives on the server, so a restarted process resumes where the last left off.

The pull is one lingering request at a time (`batch` = free handler slots, `expires` =
`fetch_wait`) on an inbox of our own, and each message goes to its handler as it arrives.
nats-py's `fetch` first sends a `no_wait` probe that carries `expires`; on a clustered stream
the server held the messages that arrived meanwhile until that probe expired, so messages to
an idle consumer waited up to `fetch_wait` (a p99 of one second on a three-node cluster,
measured with bench/messaging.py; 20 ms without the probe).

Two rules keep what this process holds within what it can handle before `ack_wait` runs out.
A clustered consumer sends a delivery only once its peers have recorded it, so deliveries to
a request (and the status that ends it) can come after the loop gave up on that request:

- Each request has its own reply subject, so only the end of the current request ends a pull.
  With one subject for all, a late end of an earlier request cut the current one short, the
  loop asked again with the earlier one still open, and open requests piled up.
- Messages already in the inbox count against the free slots; the server is asked only for
  the rest. Messages waiting there get no in-progress notes, so an inbox holding more than the
  handlers reach within `ack_wait` has each of them delivered again behind the others.

Without them, after a nats-server node was killed under load, an inbox consumer went round
delivering copies faster than anyone reached them (tens of thousands queued in the host, every
delivery of a partition's 1,250 unhandled messages outliving its ack deadline) and never caught
up: tests/e2e/test_replicated_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DEFAULT_PREFIX, AckPolicy, ConsumerConfig, DeliverPolicy, StatusCode
from nats.js.client import JetStreamContext

from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

Handler = Callable[[Msg], Awaitable[None]]

FETCH_WAIT = 1.0
"""How long one pull waits for messages by default; also the longest a stop waits for the
pull to end. A quiet consumer that must stop fast asks for less (more idle pulls)."""


QUEUED_WAIT = 0.01
"""How long a round without a request waits for the next message already sent to the inbox."""


def nak_delay(deliveries: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Delay before redelivering a message that failed `deliveries` times: 0.5 s, 1 s, 2 s..."""
    return float(min(cap, base * 2 ** max(0, deliveries - 1)))


class DurableConsumer:
    def __init__(
        self,
        nc: NATS,
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
        self._nc = nc
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
        self._sub: Subscription | None = None
        self._stopping = False

    async def start(self) -> None:
        # Create-or-update: a changed filter or limit takes effect without a manual step.
        await self._nc.jetstream().add_consumer(self.stream, self._config)
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(f"{inbox}.*")
        self._sub = sub
        next_subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}"
        self._task = asyncio.create_task(
            self._pull(sub, next_subject, inbox), name=f"consumer-{self.durable}"
        )

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

    async def _pull(self, sub: Subscription, next_subject: str, inbox: str) -> None:
        nc = self._nc
        loop = asyncio.get_running_loop()
        requests = 0
        while not self.stopped():
            free = self._concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            wanted = free - sub.pending_msgs
            reply = ""
            if wanted > 0:
                requests += 1
                reply = f"{inbox}.{requests}"
                # The server ends the request a little before we stop listening for it, so a
                # message is never sent to a request nobody reads any more.
                expires_ns = int(self._fetch_wait * 1e9) - 50_000_000
                request = f'{{"batch":{wanted},"expires":{expires_ns}}}'.encode()
                try:
                    await nc.publish(next_subject, request, reply=reply)
                except ConnectionClosedError:
                    log.info("consumer stopped: connection closed", consumer=self.durable)
                    return
                except Exception as exc:
                    log.warning("pull failed", consumer=self.durable, error=str(exc) or repr(exc))
                    await asyncio.sleep(0.5)
                    continue
            # Without a request of its own, this round takes what is in the inbox already.
            deadline = loop.time() + (self._fetch_wait if reply else QUEUED_WAIT)
            received = 0
            while received < free:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    msg = await sub.next_msg(timeout=left)
                except (NatsTimeoutError, TimeoutError):
                    break
                except ConnectionClosedError:
                    log.info("consumer stopped: connection closed", consumer=self.durable)
                    return
                except Exception as exc:  # a dead pull loop would leave its inbox unread
                    log.warning("pull broken", consumer=self.durable, error=str(exc) or repr(exc))
                    await asyncio.sleep(0.5)
                    break
                status = JetStreamContext.is_status_msg(msg)
                if status == StatusCode.CONTROL_MESSAGE:
                    continue  # an idle heartbeat
                if status:
                    if msg.subject == reply:
                        break  # this request is over: expired, no messages, or refused
                    continue  # the end of an earlier one
                received += 1
                if self.stopped():  # the stop came while this pull waited
                    await _quietly(msg.nak())
                    continue
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
