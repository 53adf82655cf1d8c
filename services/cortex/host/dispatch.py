"""Getting inbox messages to replicas: partitioned consumers, local delivery, hand-over.

Every host pulls from every inbox partition (`inbox-<p>`, one durable consumer each: a fixed
number of consumers whatever the number of agents, see docs/architecture.md). A message for an
agent with a replica here is handled here; one for an agent that runs elsewhere is handed over
with a core NATS request to `cortex.deliver.<agent_id>`, which the hosts running that agent
answer as a queue group. Either way the JetStream message is acked only once a handler
succeeded, and nak'ed with backoff otherwise, so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StatusCode as NatsStatus
from nats.js.client import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeliveryOutcome, StatusUpdate
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.consumer import DurableConsumer
from cortex.kernel.bus.publish import publish_durably
from cortex.kernel.context import incoming
from cortex.kernel.ids import new_id, utcnow
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.messages import (
    Message,
    claimed_payload,
    encode_payload,
    read_message,
    stash_if_large,
)
from cortex.kernel.metrics import HOSTS, counter
from cortex.kernel.waiting import cancel_and_wait
from cortex.sdk.agent import Reply

from .handled import SKIPPED, HandledIds
from .replica import Replica

log = get_logger()

HANDED_OVER = counter(
    "cortex_host_handovers_total",
    "Messages passed to another host that runs the agent, by outcome",
    ["outcome"],
    exported_by=HOSTS,
)
for _outcome in ("ok", "failed", "timeout", "not_running"):
    HANDED_OVER.labels(_outcome)  # series at 0 from the start: a rate reads 0, not "no data"

DELIVERY_HEADER = "Cortex-Delivery"
WORKING = "working"
"""The status of a hand-over's interim answer: the handler still runs."""
HANDOVER_PROGRESS = 1.0
HANDOVER_SILENCE = 5.0
"""Seconds without a word from the host a message was handed to before it counts as lost."""


class AgentNotHere(Exception):
    """No host runs a replica of the agent right now; the message waits and comes back."""


class HandlerFailed(Exception):
    pass


class AgentSlot:
    """The replicas of one agent on this host, picked round robin."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.replicas: list[Replica] = []
        self._turn = itertools.count()
        self.subscription: Subscription | None = None

    def pick(self) -> Replica | None:
        ready = [r for r in self.replicas if r.accepting]
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]


class Dispatcher:
    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        subjects: Subjects,
        host_id: str,
        handled: HandledIds,
        *,
        ack_wait: float = 30.0,
        handover_timeout: float = 600.0,
        concurrency: int = 512,
    ) -> None:
        self._nc = nc
        self._js = js
        self._subjects = subjects
        self._handover_timeout = handover_timeout
        self._ack_wait = ack_wait
        self._concurrency = concurrency
        self._host_id = host_id
        self._handled = handled
        self._slots: dict[str, AgentSlot] = {}
        self._replicas: dict[str, Replica] = {}
        self._direct: Subscription | None = None
        self._consumers: list[DurableConsumer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._handling = KeyedLocks()

    async def start(self) -> None:
        # One wildcard subscription answers requests addressed to any replica of this host
        # (discovery's `direct` subject), however many replicas it runs.
        self._direct = await self._nc.subscribe(
            self._subjects.instances_of_host(self._host_id), cb=self._on_direct
        )
        for partition in range(self._subjects.inbox_partitions):
            consumer = DurableConsumer(
                self._nc,
                stream=self._subjects.messages_stream,
                durable=self._subjects.inbox_consumer(partition),
                filter_subjects=[self._subjects.inbox_partition(partition)],
                handler=self._on_inbox,
                concurrency=self._concurrency,
                ack_wait=self._ack_wait,
            )
            await consumer.start()
            self._consumers.append(consumer)

    async def stop_taking(self, grace: float) -> None:
        """No new messages from the inboxes; those being handled finish (up to `grace`)."""
        if self._direct is not None:
            await self._direct.unsubscribe()
        await asyncio.gather(*(c.stop(grace) for c in self._consumers))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)

    async def add(self, replica: Replica) -> None:
        slot = self._slots.get(replica.spec.agent_id)
        if slot is None:
            slot = self._slots[replica.spec.agent_id] = AgentSlot(replica.spec.agent_id)
            subject = self._subjects.deliver(slot.agent_id)
            slot.subscription = await self._nc.subscribe(
                subject, queue=f"deliver-{slot.agent_id}", cb=self._on_handover
            )
        slot.replicas.append(replica)
        self._replicas[replica.id] = replica

    async def remove(self, replica: Replica) -> None:
        self._replicas.pop(replica.id, None)
        slot = self._slots.get(replica.spec.agent_id)
        if slot is None or replica not in slot.replicas:
            return
        slot.replicas.remove(replica)
        if not slot.replicas:
            del self._slots[slot.agent_id]
            if slot.subscription is not None:
                try:
                    await slot.subscription.unsubscribe()
                except Exception as exc:  # the connection is closing: nothing to undo
                    log.debug("unsubscribe failed", error=str(exc))

    # --- from the inbox consumers (acked by the consumer when this returns) ----------------

    async def _on_inbox(self, msg: Msg) -> None:
        agent_id = msg.subject.rsplit(".", 1)[-1]
        if msg.headers is None:
            msg.headers = {}
        if not msg.headers.get(m.MSG_ID) and msg.metadata:
            # A publisher that set no id: its stream sequence is the stable one (the messaging
            # service's index names it the same way).
            msg.headers[m.MSG_ID] = f"seq-{msg.metadata.sequence.stream}"
        slot = self._slots.get(agent_id)
        replica = slot.pick() if slot else None
        if replica is not None:
            await self._handle_here(replica, read_message(msg, agent_id))
            return
        try:
            await self._hand_over(agent_id, msg)
        except AgentNotHere:
            # Waiting for an agent that does not run is not a failed delivery: remember how
            # often it happened so that it does not count against the agent's max_deliveries.
            await self._handled.park(msg.headers[m.MSG_ID])
            raise

    async def _hand_over(self, agent_id: str, msg: Msg) -> None:
        """Pass the message to a host that runs the agent and wait for its handler's outcome.

        That host says "working" every `HANDOVER_PROGRESS` seconds while the handler runs. A
        request or answer lost with a nats-server node is noticed after `HANDOVER_SILENCE`
        seconds without a word, and the message comes back a little later; waiting out the
        whole `handover_timeout` instead held it in progress for ten minutes."""
        headers = dict(msg.headers or {})
        headers[DELIVERY_HEADER] = str(msg.metadata.num_delivered if msg.metadata else 1)
        inbox = self._nc.new_inbox()
        replies = await self._nc.subscribe(inbox)
        try:
            await self._nc.publish(
                self._subjects.deliver(agent_id), msg.data, reply=inbox, headers=headers
            )
            answer = await self._outcome(replies)
        except NoRespondersError:
            HANDED_OVER.labels("not_running").inc()
            raise AgentNotHere(f"no host runs agent {agent_id}") from None
        except (NatsTimeoutError, TimeoutError):
            HANDED_OVER.labels("timeout").inc()
            raise HandlerFailed(f"the host running {agent_id} did not answer") from None
        finally:
            with contextlib.suppress(Exception):
                await replies.unsubscribe()
        if (answer.headers or {}).get(m.STATUS) != "ok":
            HANDED_OVER.labels("failed").inc()
            raise HandlerFailed(answer.data.decode(errors="replace"))
        HANDED_OVER.labels("ok").inc()

    async def _outcome(self, replies: Subscription) -> Msg:
        """The answer after any number of "working" notes; raises `NoRespondersError` when
        nobody took the request, `TimeoutError` after a silence or the overall timeout."""
        async with asyncio.timeout(self._handover_timeout):
            while True:
                answer = await replies.next_msg(timeout=HANDOVER_SILENCE)
                if JetStreamContext.is_status_msg(answer) == NatsStatus.SERVICE_UNAVAILABLE:
                    raise NoRespondersError
                if (answer.headers or {}).get(m.STATUS) != WORKING:
                    return answer

    # --- from another host -----------------------------------------------------------------

    async def _on_handover(self, msg: Msg) -> None:
        # Callbacks of one subscription run one after another; a task per message lets an
        # agent with concurrency > 1 work on several at once.
        task = asyncio.create_task(self._serve_handover(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_handover(self, msg: Msg) -> None:
        agent_id = msg.subject.rsplit(".", 1)[-1]
        slot = self._slots.get(agent_id)
        replica = slot.pick() if slot else None
        status, body = "ok", b""
        if replica is None:
            status, body = "error", f"agent {agent_id} stopped on this host".encode()
        else:
            progress = asyncio.create_task(self._say_working(msg.reply))
            try:
                await self._handle_here(replica, read_message(msg, agent_id))
            except Exception as exc:
                status, body = "error", str(exc).encode()
            finally:
                await cancel_and_wait(progress)
        try:
            await self._nc.publish(msg.reply, body, headers={m.STATUS: status})
        except Exception as exc:
            log.debug("hand-over answer not sent", error=str(exc))

    async def _say_working(self, reply_to: str) -> None:
        """Tell the host that handed a message over that its handler still runs."""
        while True:
            await asyncio.sleep(HANDOVER_PROGRESS)
            with contextlib.suppress(Exception):  # NATS away: the silence says it
                await self._nc.publish(reply_to, b"", headers={m.STATUS: WORKING})

    # --- straight to one replica ------------------------------------------------------------

    async def _on_direct(self, msg: Msg) -> None:
        task = asyncio.create_task(self._serve_direct(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_direct(self, msg: Msg) -> None:
        """A core NATS request to one replica: not persisted, answered with the handler's
        reply (or its error); the caller retries if it wants to."""
        replica = self._replicas.get(msg.subject.rsplit(".", 1)[-1])
        if replica is None or not replica.accepting or not msg.reply:
            if msg.reply:
                await self._nc.publish(
                    msg.reply, b"no such replica running here", headers={m.STATUS: "error"}
                )
            return
        message = read_message(msg, replica.spec.agent_id)
        with _handling(message):
            await self._answer_direct(msg.reply, replica, message)

    async def _answer_direct(self, reply_to: str, replica: Replica, message: Message) -> None:
        try:
            result = await _run(replica, message)
        except Exception as exc:
            await self._nc.publish(
                reply_to,
                f"{type(exc).__name__}: {exc}".encode(),
                headers={m.STATUS: "error", m.CONTENT_TYPE: "text/plain"},
            )
            return
        payload, content_type = _reply_payload(result)
        await self._nc.publish(
            reply_to,
            payload,
            headers={
                m.STATUS: "ok",
                m.CONTENT_TYPE: content_type,
                m.FROM: replica.spec.agent_id,
                m.IN_REPLY_TO: message.id,
            },
        )

    # --- handling ----------------------------------------------------------------------------

    async def _handle_here(self, replica: Replica, message: Message) -> None:
        """Run the handler on this host; return to have the message acked, raise to have it
        come back later. A message over its agent's delivery limit goes to the dead-letter
        queue (and is acked here)."""
        # JetStream can deliver a message again while its first delivery still waits for a
        # free slot of the replica or runs (a restarted nats-server forgot the delivery, or the
        # ack deadline passed): the later one waits for the earlier and then finds its mark.
        with _handling(message):
            async with self._handling.hold(f"{replica.spec.agent_id}.{message.id}"):
                await self._handle_once(replica, message)

    async def _handle_once(self, replica: Replica, message: Message) -> None:
        spec = replica.spec
        if message.delivery > 1:
            waited = await self._handled.parked(message.id)
            message = dataclasses.replace(message, delivery=max(1, message.delivery - waited))
        if message.delivery > spec.max_deliveries:
            await self._dead_letter(
                replica,
                message,
                last_error=None,
                reason=(
                    f"not acknowledged in {message.delivery - 1} deliveries: its handler never "
                    "finished (the replica crashed or stopped)"
                ),
            )
            return
        if message.deadline and utcnow() > message.deadline:
            # Its sender gave up on it (a request that timed out or was cancelled).
            self._status(message, replica, "skipped", "past its deadline")
            return
        if await self._handled.seen(spec.agent_id, message.id, message.delivery):
            SKIPPED.inc()
            self._status(message, replica, "skipped")
            return
        self._status(message, replica, "delivered")
        try:
            result = await _run(replica, await claimed_payload(self._js, message))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if message.reply_to:
                # A request is answered with its error at once; retrying it is the caller's
                # choice (a workflow step's retry), not the host's.
                await self._reply(message, replica, error.encode(), "text/plain", status="error")
                self._status(message, replica, "failed", error)
                return
            if message.delivery >= spec.max_deliveries:
                await self._dead_letter(
                    replica,
                    message,
                    last_error=error,
                    reason=(f"its handler failed in all {message.delivery} deliveries"),
                )
                return
            self._status(message, replica, "failed", error)
            raise HandlerFailed(error) from exc
        self._handled.remember(spec.agent_id, message.id)
        if message.reply_to:
            payload, content_type = _reply_payload(result)
            await self._reply(message, replica, payload, content_type, status="ok")
        self._status(message, replica, "acked")

    async def _dead_letter(
        self, replica: Replica, message: Message, *, reason: str, last_error: str | None
    ) -> None:
        """Keep the message, as it came, in the dead-letter queue; the caller then acks it."""
        headers = dict(message.wire_headers)
        headers.update(
            {
                m.MSG_ID: f"dead-{message.id}",
                m.DELIVERIES: str(message.delivery),
                m.DEAD_REASON: reason,
                m.DEAD_AT: utcnow().isoformat(),
            }
        )
        if last_error:
            headers[m.LAST_ERROR] = last_error[:1000]
        await publish_durably(
            self._js,
            self._subjects.dead_letter(replica.spec.agent_id),
            message.payload,
            headers,
            within=10,
        )
        replica.metrics.dead_lettered.inc()
        log.warning(
            "message dead-lettered",
            agent_id=replica.spec.agent_id,
            msg_id=message.id,
            reason=reason,
        )
        self._status(message, replica, "dead_lettered", last_error)

    def _status(
        self,
        message: Message,
        replica: Replica,
        status: DeliveryOutcome,
        error: str | None = None,
    ) -> None:
        """Tell the messaging service (fire and forget: it is bookkeeping, not the message)."""
        update = StatusUpdate(
            msg_id=message.id,
            agent_id=replica.spec.agent_id,
            status=status,
            delivery=message.delivery,
            host_id=self._host_id,
            at=utcnow(),
            error=error,
        )
        task = asyncio.create_task(
            self._nc.publish(
                self._subjects.msg_status(replica.spec.agent_id, message.id),
                msgspec.json.encode(update),
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(
        self,
        message: Message,
        replica: Replica,
        payload: bytes,
        content_type: str,
        *,
        status: str,
    ) -> None:
        assert message.reply_to is not None
        reply_id = new_id()
        headers = {
            m.MSG_ID: reply_id,
            m.CREATED_AT: utcnow().isoformat(),
            m.IN_REPLY_TO: message.id,
            m.FROM: replica.spec.agent_id,
            m.TO: message.sender,
            m.CONTENT_TYPE: content_type,
            m.STATUS: status,
        }
        try:
            payload = await stash_if_large(self._js, self._subjects, reply_id, payload, headers)
            await self._nc.publish(message.reply_to, payload, headers=headers)
        except Exception as exc:  # the requester is gone; the message itself still counts
            log.debug("reply not sent", error=str(exc))


def _handling(message: Message) -> contextlib.AbstractContextManager[Span]:
    """Where one message is handled: with the correlation id it came with (the handler's log
    lines carry it, and the messages and calls it makes send it on) and the agent's id, in a
    consumer span that continues the sender's trace."""
    return incoming(
        message.wire_headers,
        "handle agent message",
        SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.message.id": message.id,
            "messaging.message.delivery_count": message.delivery,
            "cortex.agent_id": message.to,
        },
        agent_id=message.to,
    )


async def _run(replica: Replica, message: Message) -> Any:
    """The handler's result. A handler that fails marks the message's span failed, whatever
    the host makes of the failure (a retry, an error reply, a dead letter)."""
    try:
        return await replica.handle(message)
    except Exception as exc:
        span = trace.get_current_span()
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
        raise


def _reply_payload(result: Any) -> tuple[bytes, str]:
    if isinstance(result, Reply):
        return encode_payload(result.payload, result.content_type)
    if result is None:
        return b"", "application/octet-stream"
    return encode_payload(result)
