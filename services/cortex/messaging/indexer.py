"""Feeding the message and dead-letter indexes from JetStream, at start and from then on.

The messages stream is read first, then the status and dead-letter streams: a report about a
message not yet indexed has to wait in memory, and reading the messages first keeps that wait
for the live race (a host reporting a delivery a moment before this service reads the message)
instead of for a whole stream. The read runs in the background, so subscriptions and fan-out
serve while a large stream loads; `ready` (and `/ready`) waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import datetime

import msgspec

from cortex.contracts.messaging import MessageRecord, StatusUpdate
from cortex.kernel.errors import Unavailable
from cortex.kernel.logging import get_logger
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.waiting import cancel_and_wait
from cortex.messaging import wire
from cortex.messaging.dead_letter_index import DeadLetterIndex
from cortex.messaging.message_index import MAX_INDEXED, MessageIndex
from cortex.messaging.metrics import INDEXED, STATUS_UPDATES
from cortex.messaging.stream_follower import StreamFollower

log = get_logger()

RETRY_PAUSES = (0.5, 1.0, 2.0, 5.0)


class Indexer:
    def __init__(
        self,
        runtime: ServiceRuntime,
        limit: int = MAX_INDEXED,
        *,
        on_sent: Callable[[str], None] | None = None,
    ) -> None:
        """`on_sent(agent_id)`: a message for the agent was stored, after the start (the
        messages the stream held already were counted when they came)."""
        self._runtime = runtime
        self._limit = limit
        self._on_sent = on_sent
        self._live = asyncio.Event()
        self._layout = wire.Layout(runtime.subjects)
        self._updates = msgspec.json.Decoder(StatusUpdate)
        self.messages = MessageIndex(limit)
        self.dead_letters = DeadLetterIndex()
        self._followers: list[StreamFollower] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def require_ready(self) -> None:
        if not self._ready:
            raise Unavailable("the message index is still being read from JetStream; retry")

    def record(self, msg_id: str) -> MessageRecord | None:
        """A message's record. A dead-lettered one also says what became of its dead letter,
        which only the dead-letter index knows: where to look next depends on it."""
        record = self.messages.get(msg_id)
        if record is None or record.status != "dead_lettered":
            return record
        if self.dead_letters.get(msg_id) is not None:
            return msgspec.structs.replace(record, dead_letter="kept")
        replay = wire.replay_id(msg_id)
        if self.messages.get(replay) is not None:
            return msgspec.structs.replace(record, dead_letter="replayed", replayed_as=replay)
        return msgspec.structs.replace(record, dead_letter="purged")

    def start(self) -> None:
        self._task = asyncio.create_task(self._load(), name="messaging-index")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        for follower in self._followers:
            await follower.stop()
        self._followers = []

    async def _load(self) -> None:
        subjects = self._runtime.subjects
        root = subjects.root
        messages = StreamFollower(
            self._runtime.js,
            stream=subjects.messages_stream,
            subject=f"{root}.msg.>",
            handler=self._on_message,
            headers_only=True,
            keep_last=self._limit,
        )
        statuses = StreamFollower(
            self._runtime.js,
            stream=subjects.status_stream,
            subject=f"{root}.msgstatus.>",
            handler=self._on_status,
        )
        dead = StreamFollower(
            self._runtime.js,
            stream=subjects.dead_letter_stream,
            subject=f"{root}.dlq.>",
            handler=self._on_dead_letter,
            headers_only=True,
        )
        self._live = messages.caught_up
        await self._follow(messages)
        await messages.caught_up.wait()
        await self._follow(statuses)
        await self._follow(dead)
        await statuses.caught_up.wait()
        await dead.caught_up.wait()
        self._ready = True
        log.info(
            "message index loaded",
            messages=len(self.messages),
            dead_letters=len(self.dead_letters),
            waiting_reports=self.messages.pending,
        )

    async def _follow(self, follower: StreamFollower) -> None:
        """Start following; NATS may be away for a moment at start, so keep trying."""
        for attempt in itertools.count():
            try:
                await follower.start()
                self._followers.append(follower)
                return
            except Exception as exc:
                pause = RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)]
                log.warning(
                    "cannot read stream yet; retrying",
                    stream=follower.stream,
                    error=str(exc) or repr(exc),
                    retry_in=pause,
                )
                await asyncio.sleep(pause)

    # --- what the streams hold ---------------------------------------------------------------

    def _on_message(
        self, subject: str, headers: dict[str, str], data: bytes, seq: int, at: datetime | None
    ) -> None:
        entry = wire.indexed(self._layout, subject, headers, seq, at)
        if entry is not None:
            self.messages.add(entry)
            INDEXED.set(len(self.messages))
            if entry.to is not None and self._on_sent is not None and self._live.is_set():
                self._on_sent(entry.to)

    def _on_status(
        self, subject: str, headers: dict[str, str], data: bytes, seq: int, at: datetime | None
    ) -> None:
        try:
            update = self._updates.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable status report skipped", subject=subject, error=str(exc))
            return
        STATUS_UPDATES.labels(update.status).inc()
        self.messages.apply(update)

    def _on_dead_letter(
        self, subject: str, headers: dict[str, str], data: bytes, seq: int, at: datetime | None
    ) -> None:
        letter = wire.dead_letter(self._layout, subject, headers, seq, at)
        if letter is None:
            return
        self.dead_letters.add(seq, letter)
        self.messages.apply(wire.dead_report(letter))
