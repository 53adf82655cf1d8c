"""Following the log stream into this replica's index, and answering `log.search` from it.

Every replica reads `CORTEX_LOGS` from where its index file left off (a pull consumer, so
that reading never runs ahead of writing) and writes what arrives in batches, on a thread of
its own. A replica takes searches only once its index has caught up with the stream
(`log.search` is a deferred endpoint), so a replica that is still reading a full stream leaves
the searches to the others.

A search is answered as of one point of the stream: its last sequence when the search arrives,
which the replica waits to have indexed, with the lines the stream still holds (from its first
sequence then). Two replicas asked the same give the same page, whatever each has read or
pruned beyond it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cortex.contracts.logs import LogLine, LogPage, SearchLogs
from cortex.kernel.errors import Invalid, Unavailable
from cortex.kernel.log_lines import (
    SEVERITY,
    folded,
    line_context,
    log_line,
    service_and_level,
    severity,
)
from cortex.kernel.logging import get_logger
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.waiting import cancel_and_wait
from cortex.messaging.log_index import Found, LogReader, LogWriter, Query, Row
from cortex.messaging.metrics import LOG_LINES_INDEXED

log = get_logger()

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BATCH = 2_000
"""Lines written in one transaction (batches of 10,000 wrote no faster)."""
FETCH = 1_000
"""Lines asked of the stream at a time."""
FETCH_WAIT = 1.0
"""Seconds a fetch waits for a line; a line stored meanwhile is sent at once."""
HOLD_BACK = 10_000
"""Lines read but not yet written before reading pauses."""
CHECK_CONSUMER_EVERY = 10
"""Empty fetches in a row after which the consumer is looked up (a restarted nats-server has
forgotten it, and a fetch from a consumer that is gone only times out)."""
CONSUMER_IDLE_LIMIT = 60.0
"""Seconds after which nats-server deletes the consumer of a replica that stopped asking."""
FLUSH_EVERY = 0.05
"""Seconds a line waits, at most, before it is written (and found)."""
PRUNE_EVERY = 30.0
"""Seconds between looks at the stream's first sequence, to forget lines it no longer has."""
PRUNE_CHUNK = 20_000
RETRY_PAUSES = (0.5, 1.0, 2.0, 5.0)

CHILD_NAME_VAR = "CORTEX_UP_CHILD"
"""Set by `cortex up` for each child (`messaging-2`): a name that stays the same across its
restarts, so that a restarted replica finds its index again."""


def index_path(data_dir: Path) -> Path:
    """This replica's index file: by its name under `cortex up`, by its host name otherwise
    (a Kubernetes pod's, whose data dir is its own)."""
    name = os.environ.get(CHILD_NAME_VAR) or f"messaging-{socket.gethostname()}"
    return data_dir / "logindex" / f"{name}.sqlite3"


class LogIndexer:
    def __init__(self, runtime: ServiceRuntime, path: Path) -> None:
        self._runtime = runtime
        self._path = path
        self._writer: LogWriter | None = None
        self._reader: LogReader | None = None
        self._writing = ThreadPoolExecutor(1, thread_name_prefix="log-index-writer")
        self._reading = ThreadPoolExecutor(1, thread_name_prefix="log-index-reader")
        self._pending: list[Row] = []
        self._read_through = 0
        """The last sequence handed to this replica (indexed or not yet)."""
        self.through = 0
        """The last sequence written to the index."""
        self._written = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False

    def start(self, serve: Callable[[], Awaitable[None]]) -> None:
        """Open the index and follow the stream in the background; `serve` once caught up."""
        self._tasks.append(asyncio.create_task(self._run(serve), name="log-index"))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._write()  # what was read and not yet written
        for pool, closing in ((self._writing, self._writer), (self._reading, self._reader)):
            if closing is not None:
                await asyncio.get_running_loop().run_in_executor(pool, closing.close)
            pool.shutdown(wait=False)

    # --- following the stream -------------------------------------------------------------

    async def _run(self, serve: Callable[[], Awaitable[None]]) -> None:
        for attempt in itertools.count():
            try:
                last_seq = await self._open()
                break
            except Exception as exc:
                pause = RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)]
                log.warning(
                    "cannot open the log index yet; retrying",
                    error=str(exc) or repr(exc),
                    retry_in=pause,
                )
                await asyncio.sleep(pause)
        for name, work in (
            ("log-index-read", self._read_loop()),
            ("log-index-flush", self._flush_loop()),
            ("log-index-prune", self._prune_loop()),
        ):
            self._tasks.append(asyncio.create_task(work, name=name))
        started = time.monotonic()
        await self._wait_for(last_seq, timeout=None)
        self.ready = True
        log.info(
            "log index caught up",
            through=self.through,
            seconds=round(time.monotonic() - started, 1),
        )
        await serve()

    async def _open(self) -> int:
        """Open the index for the stream as it is now; the last sequence to index before
        taking searches (0: the stream holds no line)."""
        info = await self._runtime.js.stream_info(self._runtime.subjects.logs_stream)
        created = info.created.isoformat() if info.created else ""
        writer = self._writer = await self._on_writer(lambda: LogWriter(self._path, created))
        if writer.through > info.state.last_seq:  # a new stream of the same name
            await self._on_writer(lambda: writer.reset(created))
        self.through = self._read_through = writer.through
        self._reader = await self._on_reader(lambda: LogReader(self._path))
        state = info.state
        return state.last_seq if state.first_seq <= state.last_seq else 0

    async def _read_loop(self) -> None:
        """Read the stream from the index's `through` on, a batch at a time.

        A pull consumer sends only what was asked for, so a replica reading a full stream holds
        at most `HOLD_BACK` lines it has not written. (An ordered push consumer, as the message
        index uses, let 1,000,000 lines overrun the client's buffer: nats-py dropped 393,101 of
        them and the consumer never noticed.) The consumer is ephemeral and in memory; after a
        nats-server restart, or when it is gone for any reason, a new one starts after the last
        line read."""
        js = self._runtime.js
        subjects = self._runtime.subjects
        sub: JetStreamContext.PullSubscription | None = None
        idle = 0
        try:
            while True:
                try:
                    if sub is None:
                        sub = await js.pull_subscribe(
                            f"{subjects.root}.log.>",
                            stream=subjects.logs_stream,
                            config=ConsumerConfig(
                                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=self._read_through + 1,
                                ack_policy=AckPolicy.NONE,
                                mem_storage=True,
                                inactive_threshold=CONSUMER_IDLE_LIMIT,
                            ),
                        )
                    try:
                        batch = await sub.fetch(FETCH, timeout=FETCH_WAIT)
                    except (NatsTimeoutError, TimeoutError):
                        idle += 1
                        if idle % CHECK_CONSUMER_EVERY == 0:
                            await sub.consumer_info()  # raises when the consumer is gone
                        continue
                    idle = 0
                    for msg in batch:
                        self._take(msg)
                    if len(self._pending) >= BATCH:
                        self._kick.set()
                    if len(self._pending) >= HOLD_BACK:
                        self._room.clear()
                        await self._room.wait()
                except Exception as exc:
                    log.warning("log stream not read; reading on", error=str(exc) or repr(exc))
                    if sub is not None:
                        with contextlib.suppress(Exception):
                            await sub.unsubscribe()
                        sub = None
                    await asyncio.sleep(RETRY_PAUSES[0])
        finally:
            # A pull's late status lines wait in the subscription's queue; left subscribed, the
            # connection's drain at stop waits for someone to read them (five seconds lost).
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def _take(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self._read_through:  # a new consumer may repeat what the last one sent
            return
        service, level = service_and_level(msg.subject)
        ids = line_context(msg.data)
        self._pending.append(
            Row(
                seq=seq,
                at_us=_us(msg.metadata.timestamp),
                service=service,
                severity=severity(level),
                agent=ids.agent_id,
                execution=ids.execution_id,
                correlation=ids.correlation_id,
                line=msg.data.decode(errors="replace"),
            )
        )
        self._read_through = seq

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY):
                    await self._kick.wait()
            self._kick.clear()
            if self._read_through > self.through:
                try:
                    await self._write()
                except Exception:
                    log.exception("log lines not indexed; trying again")
                    await asyncio.sleep(1)

    async def _write(self) -> None:
        writer = self._writer
        if writer is None:
            return
        while self._read_through > self.through:
            rows, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            through = rows[-1].seq if self._pending else self._read_through
            try:
                await self._on_writer(functools.partial(writer.add, rows, through))
            except BaseException:
                self._pending[:0] = rows  # written with the next try
                raise
            LOG_LINES_INDEXED.inc(len(rows))
            self.through = through
            self._written.set()
            self._written = asyncio.Event()
            if len(self._pending) < HOLD_BACK:
                self._room.set()

    async def _prune_loop(self) -> None:
        js = self._runtime.js
        stream = self._runtime.subjects.logs_stream
        writer = self._writer
        assert writer is not None
        while True:
            try:
                first = (await js.stream_info(stream)).state.first_seq
                forgotten = PRUNE_CHUNK
                while forgotten == PRUNE_CHUNK:
                    # In chunks, so that lines go on being written between them.
                    forgotten = await self._on_writer(
                        functools.partial(writer.prune, first, PRUNE_CHUNK)
                    )
            except Exception as exc:
                log.warning("old log lines not pruned yet", error=str(exc) or repr(exc))
            await asyncio.sleep(PRUNE_EVERY)

    async def _wait_for(self, seq: int, timeout: float | None) -> bool:
        """Whether the index has written every line up to `seq` (within `timeout`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.through < seq:
            written = self._written
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._kick.set()
            try:
                async with asyncio.timeout(left):
                    await written.wait()
            except TimeoutError:
                return False
        return True

    # --- searching ------------------------------------------------------------------------

    async def search(self, req: SearchLogs) -> LogPage:
        reader = self._reader
        if not self.ready or reader is None:
            raise Unavailable("the log index is still being read from the stream; retry")
        state = (await self._runtime.js.stream_info(self._runtime.subjects.logs_stream)).state
        hi = state.last_seq
        if req.before is not None:
            try:
                hi = min(hi, int(req.before) - 1)
            except ValueError:
                raise Invalid.field("$.before", "not a page's `next`") from None
        wait = self._runtime.settings.request_timeout / 2
        # Lines the stream dropped are never read: wait only for lines it holds.
        if state.first_seq <= hi and not await self._wait_for(hi, timeout=wait):
            raise Unavailable(
                f"the log index is {hi - self.through} lines behind the stream; retry"
            )
        query = Query(
            lo=state.first_seq,
            hi=hi,
            limit=req.limit,
            service=req.service,
            severities=(
                None
                if req.level is None
                else tuple(n for n in sorted(set(SEVERITY.values())) if n >= SEVERITY[req.level])
            ),
            agent=req.agent_id,
            execution=req.execution_id,
            correlation=req.correlation_id,
            text=None if req.text is None else folded(req.text).decode(),
            since_us=None if req.since is None else _us(req.since),
            until_us=None if req.until is None else _us(req.until),
        )
        found = await self._on_reader(lambda: reader.search(query))
        page = found[: req.limit]
        return LogPage(
            items=[_line(f) for f in page],
            next=str(page[-1].seq) if len(found) > req.limit else None,
            last_seq=state.last_seq,
        )

    async def _on_writer(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writing, work)

    async def _on_reader(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reading, work)


def _line(found: Found) -> LogLine:
    return log_line(found.seq, EPOCH + timedelta(microseconds=found.at_us), found.line)


def _us(at: datetime) -> int:
    """Microseconds since the epoch, exactly (a float of seconds would round them)."""
    return (at - EPOCH) // timedelta(microseconds=1)
