"""The dead-letter queue: list, read, replay into the agent's inbox, delete.

Agent hosts put a message there, as it came plus why it died, after its last delivery. The index
(`dead_letter_index.py`) says where each one is in the stream; payloads are fetched from the
stream only for `dlq.get` and a replay. A replay publishes before it deletes: a crash between the
two leaves the dead letter in place and a second replay uses the same new id, which JetStream's
duplicate window drops, so a message is never lost and rarely doubled.
"""

from __future__ import annotations

import contextlib

from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from cortex.contracts import messages as m
from cortex.contracts.messaging import (
    DeadLetter,
    DeadLetterPage,
    ListDeadLetters,
    Replayed,
)
from cortex.kernel.bus.publish import publish_durably
from cortex.kernel.context import sent_again
from cortex.kernel.errors import Invalid, NotFound
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.messages import payload_for_api
from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.messaging import wire
from cortex.messaging.dead_letter_index import DeadEntry, DeadLetterIndex
from cortex.messaging.indexer import Indexer
from cortex.messaging.metrics import DEAD_LETTERS_DELETED, DEAD_LETTERS_REPLAYED

log = get_logger()


class DeadLetters:
    def __init__(self, runtime: ServiceRuntime, indexer: Indexer) -> None:
        self._runtime = runtime
        self._indexer = indexer
        self._stream = runtime.subjects.dead_letter_stream
        self._locks = KeyedLocks()

    @property
    def _index(self) -> DeadLetterIndex:
        return self._indexer.dead_letters

    async def list(self, query: ListDeadLetters) -> DeadLetterPage:
        self._indexer.require_ready()
        await self._forget_aged_out()
        return self._index.page(query.agent_id, query.limit, query.after)

    async def get(self, dead_id: str) -> DeadLetter:
        self._indexer.require_ready()
        entry = self._entry(dead_id)
        raw = await self._fetch(entry)
        headers = dict(raw.headers or {})
        data = raw.data or b""
        letter = entry.letter
        return DeadLetter(
            id=letter.id,
            agent_id=letter.agent_id,
            from_=letter.from_,
            content_type=letter.content_type,
            size=wire.payload_size(headers, len(data)),
            deliveries=letter.deliveries,
            reason=letter.reason,
            last_error=letter.last_error,
            created_at=letter.created_at,
            dead_at=letter.dead_at,
            # A claim-checked payload stays in the object store (up to 64 MB: no reply carries
            # it); its size says how big it is and a replay takes the claim check along.
            payload=None
            if m.CLAIM_CHECK in headers
            else payload_for_api(letter.content_type, data),
            headers=wire.user_headers(headers),
        )

    async def replay(self, dead_id: str, ctx: Context) -> Replayed:
        self._indexer.require_ready()
        async with self._locks.hold(dead_id):
            entry = self._entry(dead_id)
            raw = await self._fetch(entry)
            new_id = wire.replay_id(dead_id)
            agent_id = entry.letter.agent_id
            try:
                subject = self._runtime.subjects.agent_inbox(agent_id)
            except ValueError:
                raise Invalid(f"dead letter {dead_id} names no usable agent id") from None
            await publish_durably(
                self._runtime.js,
                subject,
                raw.data or b"",
                # The replay belongs to the request that asks for it, as a new message would.
                sent_again(wire.replay_headers(dict(raw.headers or {}), new_id, dead_id)),
                within=10,
            )
            await self._delete(entry)
            DEAD_LETTERS_REPLAYED.inc()
            ctx.log.info("dead letter replayed", id=dead_id, new_id=new_id, agent_id=agent_id)
            return Replayed(id=new_id, replay_of=dead_id)

    async def delete(self, dead_id: str, ctx: Context) -> DeadLetter:
        self._indexer.require_ready()
        async with self._locks.hold(dead_id):
            entry = self._entry(dead_id)
            await self._delete(entry)
            DEAD_LETTERS_DELETED.inc()
            ctx.log.info("dead letter deleted", id=dead_id, agent_id=entry.letter.agent_id)
            return entry.letter

    # --- helpers -----------------------------------------------------------------------------

    def _entry(self, dead_id: str) -> DeadEntry:
        entry = self._index.get(dead_id)
        if entry is None:
            raise NotFound(f"no dead letter {dead_id}")
        return entry

    async def _fetch(self, entry: DeadEntry) -> RawStreamMsg:
        try:
            return await self._runtime.js.get_msg(self._stream, entry.seq)
        except NotFoundError:
            # Aged out, or deleted by another replica: the index was behind.
            self._index.remove(entry.letter.id)
            raise NotFound(f"no dead letter {entry.letter.id}") from None

    async def _delete(self, entry: DeadEntry) -> None:
        for seq in entry.seqs:
            with contextlib.suppress(NotFoundError):  # already gone: what we wanted
                await self._runtime.js.delete_msg(self._stream, seq)
        self._index.remove(entry.letter.id)

    async def _forget_aged_out(self) -> None:
        info = await self._runtime.js.stream_info(self._stream)
        self._index.forget_before(info.state.first_seq)
