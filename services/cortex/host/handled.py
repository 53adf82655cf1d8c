"""Effectively-once: the ids of messages each agent already handled.

Where a mark is kept, fastest first: memory; a journal file of this host (one write() of one
line, so a host process killed right after a handler returned has very likely already written
it, and its restart on the same machine reads the journal back); the KV bucket (slower, but
seen by every host, for a replica that moves).

JetStream delivers at least once; a redelivery (an ack lost to a crash or to NATS being away)
must not run the handler again. A replica marks a message handled after its handler succeeded
and before the ack; a redelivered message whose mark exists is acknowledged without running the
handler. Marks live in memory (fast, and enough while NATS is away) and in a KV bucket with a
one-hour time to live (so a restarted replica, or one on another host, still knows). A mark
that could not be stored (NATS away) is stored again in the background until it is, so that a
later crash of this host does not forget it; and after NATS comes back the marks of the last
minute are stored again, because a nats-server that crashed may have lost its last writes (and
its consumers' last acks, which is also why every delivery is checked, not only those JetStream
numbers as redeliveries). Only a crash in the instant between a handler's return and its mark
can still run a handler twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from pathlib import Path

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from cortex.contracts.subjects import safe_token
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import HOSTS, counter, gauge
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

SKIPPED = counter(
    "cortex_host_duplicates_skipped_total",
    "Redelivered messages acknowledged without running the handler again",
    exported_by=HOSTS,
)
UNSTORED = gauge(
    "cortex_host_handled_marks_unstored",
    "Handled-message marks kept in memory only, waiting for NATS",
    exported_by=HOSTS,
)

MEMORY = 100_000
"""Marks kept in memory per host (the oldest go first; the KV bucket still has them)."""
RETRY = 0.5
STORE_BATCH = 256
REASSERT = 60.0
"""Marks younger than this are stored again after NATS comes back."""
SUSPECT = 120.0
"""Seconds after a reconnect during which even first deliveries are checked."""


JOURNAL_LIMIT = 16 * 1024 * 1024
"""Bytes of journal before it is rewritten with only the marks held in memory."""


class HandledIds:
    def __init__(self, kv: KeyValue, journal: Path | None = None) -> None:
        self._kv = kv
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._journal_path = journal
        self._suspect_until = time.monotonic() + SUSPECT
        self._journal: int | None = None
        if journal is not None:
            self._open_journal(journal)
        self._unstored: set[str] = set()
        self._retry: asyncio.Task[None] | None = None

    async def seen(self, agent_id: str, msg_id: str, delivery: int) -> bool:
        key = _key(agent_id, msg_id)
        if key in self._recent:
            return True
        if delivery == 1 and time.monotonic() > self._suspect_until:
            # A first delivery cannot have been handled before, unless a crashed nats-server
            # forgot acks and delivery counts: right after a reconnect, check everything.
            return False
        try:
            await self._kv.get(key)
        except KeyNotFoundError:
            return False
        except Exception as exc:  # NATS away: running it again beats losing it
            log.warning("handled-ids lookup failed", error=str(exc) or repr(exc))
            return False
        self._note(key)
        return True

    def remember(self, agent_id: str, msg_id: str) -> None:
        """Mark at once in memory and in the journal; the KV bucket follows in the background
        (it is what another machine's host would consult, which only matters once the
        replica moved there)."""
        key = _key(agent_id, msg_id)
        self._note(key)
        self._write_journal(key)
        self._unstored.add(key)
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._store_later())

    async def park(self, msg_id: str) -> None:
        """One more delivery of `msg_id` came while no host ran its agent."""
        key = f"parked.{safe_token(msg_id)}"
        try:
            count = await self.parked(msg_id)
            await self._kv.put(key, str(count + 1).encode())
        except Exception as exc:  # at worst that wait counts as a delivery
            log.debug("parked delivery not counted", error=str(exc) or repr(exc))

    async def parked(self, msg_id: str) -> int:
        """How many deliveries of `msg_id` only waited for its agent (they do not count)."""
        try:
            entry = await self._kv.get(f"parked.{safe_token(msg_id)}")
        except KeyNotFoundError:
            return 0
        except Exception as exc:
            log.debug("parked deliveries unknown", error=str(exc) or repr(exc))
            return 0
        return int(entry.value or b"0")

    def reassert(self) -> None:
        """NATS is back: store again the marks it may have lost, and check every delivery for
        a while, since its delivery counts may have been lost too."""
        self._suspect_until = time.monotonic() + SUSPECT
        cutoff = time.monotonic() - REASSERT
        recent = [key for key, at in reversed(self._recent.items()) if at >= cutoff]
        self._unstored.update(recent)
        UNSTORED.set(len(self._unstored))
        if recent and (self._retry is None or self._retry.done()):
            self._retry = asyncio.create_task(self._store_later())

    async def close(self) -> None:
        """Store what is still unstored (a graceful stop), then stop retrying."""
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        if self._retry:
            await cancel_and_wait(self._retry)
        for key in list(self._unstored):
            if await self._store(key):
                self._unstored.discard(key)

    async def _store(self, key: str) -> bool:
        try:
            await self._kv.put(key, b"1")
        except Exception as exc:
            log.debug("handled mark not stored yet", error=str(exc) or repr(exc))
            return False
        return True

    async def _store_later(self) -> None:
        while self._unstored:
            batch = list(self._unstored)[:STORE_BATCH]
            stored = await asyncio.gather(*(self._store(key) for key in batch))
            self._unstored.difference_update(k for k, ok in zip(batch, stored, strict=True) if ok)
            UNSTORED.set(len(self._unstored))
            if not all(stored):
                await asyncio.sleep(RETRY)

    def _open_journal(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text(errors="replace").splitlines()[-MEMORY:]:
                if line:
                    self._note(line)
            if path.stat().st_size > JOURNAL_LIMIT:
                self._compact(path)
        self._journal = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _write_journal(self, key: str) -> None:
        if self._journal is None or self._journal_path is None:
            return
        try:
            os.write(self._journal, f"{key}\n".encode())
            if os.fstat(self._journal).st_size > JOURNAL_LIMIT:
                os.close(self._journal)
                self._compact(self._journal_path)
                self._journal = os.open(
                    self._journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
                )
        except OSError as exc:  # a full disk: memory and the KV bucket still have it
            log.warning("handled journal not written", error=str(exc))

    def _compact(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{key}\n" for key in self._recent))
        tmp.replace(path)

    def _note(self, key: str) -> None:
        self._recent[key] = time.monotonic()
        self._recent.move_to_end(key)
        while len(self._recent) > MEMORY:
            self._recent.popitem(last=False)


def _key(agent_id: str, msg_id: str) -> str:
    return f"{agent_id}.{safe_token(msg_id)}"
