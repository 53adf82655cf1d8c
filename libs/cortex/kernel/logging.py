"""structlog set up the same way in every process, and its lines published to NATS.

JSON lines when not on a terminal (or `CORTEX_LOG_FORMAT=json`), readable colours on one. Every
line carries `service`; `agent_id`, `execution_id` and `correlation_id` join it where known
through `structlog.contextvars.bound_contextvars(...)`. Library loggers (uvicorn, nats) go
through the same renderer.

Unless `CORTEX_LOG_PUBLISH=false`, every line is also handed, as JSON whatever the terminal
shows, to a `LogPublisher`, which publishes it on `cortex.log.<service>.<level>` (captured by
the stream `CORTEX_LOGS`) once the process has a NATS connection (`publish_logs`). Logging never
waits for NATS: lines wait in a bounded queue, and what does not fit, or cannot be sent, is
dropped and counted in `cortex_logs_dropped_lines_total`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog
from nats.errors import MaxPayloadError
from structlog.typing import EventDict, Processor, WrappedLogger

from cortex.contracts.subjects import Subjects, safe_token
from cortex.kernel.metrics import EVERY_PROCESS, counter
from cortex.kernel.waiting import cancel_and_wait, wait_event

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

QUEUE_LINES = 10_000
"""Lines a process keeps while NATS is away or slow (about 3 MB); more are dropped."""
BURST = 200
"""Lines published before the publisher lets other tasks run."""
RETRY_SECONDS = 0.5
"""How often the publisher looks whether a lost NATS connection is back."""

PUBLISHED = counter(
    "cortex_logs_published_lines_total",
    "Log lines handed to NATS for the stream CORTEX_LOGS",
    exported_by=EVERY_PROCESS,
)
DROPPED = counter(
    "cortex_logs_dropped_lines_total",
    "Log lines not published: queue_full (NATS away or slow for longer than the queue of "
    "10,000 lines lasts), too_large (over NATS's max_payload), unsent (the publish failed)",
    ["reason"],
    exported_by=EVERY_PROCESS,
)


class LogPublisher:
    """A structlog processor that queues each line, and the task that publishes the queue.

    The processor runs in whichever thread logs, so the queue is a deque (appends and pops are
    atomic) and the task is woken thread-safely. Lines logged before a NATS connection exists
    wait in the queue, so a process's start-up lines are published too."""

    def __init__(self, service: str, capacity: int = QUEUE_LINES) -> None:
        self._service = safe_token(service)
        self._capacity = capacity
        self._lines: collections.deque[tuple[str, str, bytes]] = collections.deque()
        self._nc: NATS | None = None
        self._subjects: Subjects | None = None
        self._topics: dict[tuple[str, str], str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake: asyncio.Event | None = None
        self._emptied: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if len(self._lines) >= self._capacity:
            DROPPED.labels("queue_full").inc()
            return event_dict
        service = safe_token(str(event_dict.get("service") or self._service))
        level = safe_token(str(event_dict.get("level") or "info"))
        self._lines.append((service, level, _encode(event_dict)))
        self._poke()
        return event_dict

    def attach(self, nc: NATS, subjects: Subjects) -> None:
        """Publish on `nc` from now on (the queue first), from a task of the running loop."""
        self._nc, self._subjects, self._topics = nc, subjects, {}
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self._loop_thread = loop, threading.get_ident()
            self._wake, self._emptied = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._run(), name="log-publisher")
        self._poke()

    async def detach(self, nc: NATS, timeout: float) -> None:
        """Publish what is queued, for up to `timeout` seconds, then stop using `nc` (unless
        another connection replaced it meanwhile). Lines logged later wait for the next."""
        if self._nc is not nc or self._emptied is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._emptied.clear()
        self._poke()
        await wait_event(self._emptied, timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.flush(), max(0.1, deadline - loop.time()))
        if self._nc is nc:
            self._nc = None
            if self._task is not None:
                await cancel_and_wait(self._task)
                self._task = None

    def _poke(self) -> None:
        if self._wake is None or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: lines stay queued
                self._loop.call_soon_threadsafe(self._wake.set)

    def _subject(self, service: str, level: str) -> str:
        topic = self._topics.get((service, level))
        if topic is None:
            assert self._subjects is not None
            topic = self._topics[service, level] = self._subjects.log(service, level)
        return topic

    async def _run(self) -> None:
        assert self._wake is not None
        assert self._emptied is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            sent = 0
            while self._lines:
                nc = self._nc
                if nc is None or nc.is_closed:
                    break  # lines wait for the next connection
                if not nc.is_connected:
                    # Lines wait while NATS is away; the queue's bound drops what is too many.
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                service, level, data = self._lines.popleft()
                try:
                    await nc.publish(self._subject(service, level), data)
                except MaxPayloadError:
                    DROPPED.labels("too_large").inc()
                except Exception:  # closed under us; logging it would only queue more lines
                    DROPPED.labels("unsent").inc()
                else:
                    PUBLISHED.inc()
                sent += 1
                if sent % BURST == 0:
                    # A publish only appends to the client's buffer and never yields: let the
                    # process's own work run between bursts.
                    await asyncio.sleep(0)
            if not self._lines:
                self._emptied.set()


_json = msgspec.json.Encoder(enc_hook=str)


def _encode(event_dict: EventDict) -> bytes:
    """The line as JSON. An exception not yet rendered (the console format renders it itself)
    becomes structured, as the JSON format writes it; a value JSON cannot hold becomes its
    `str`."""
    if "exc_info" in event_dict:
        event_dict = structlog.processors.dict_tracebacks(None, "", dict(event_dict))
    try:
        return _json.encode(event_dict)
    except (TypeError, ValueError, OverflowError):  # e.g. keys that are not strings
        return _json.encode({str(k): str(v) for k, v in event_dict.items()})


class _Installed:
    """The process's publisher, once `configure_logging` made one."""

    publisher: LogPublisher | None = None


def configure_logging(
    service: str,
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    *,
    publish: bool = True,
) -> None:
    """`publish`: queue every line for `publish_logs` (the setting `CORTEX_LOG_PUBLISH`)."""
    out = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())

    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if json_lines:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()
    publisher = _Installed.publisher = LogPublisher(service) if publish else None
    tap: list[Processor] = [publisher] if publisher else []

    structlog.configure(
        processors=[*shared, *tap, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tap, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(_LEVELS[level], logging.INFO))
    # uvicorn's access log duplicates the gateway's own request metrics, and httpx logs every
    # request it makes (the gateway's metrics sampler: a line per process every few seconds);
    # keep both at warnings.
    for noisy in ("uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def publish_logs(nc: NATS, subjects: Subjects) -> None:
    """This process's log lines go to `subjects.log(service, level)` on `nc` from now on;
    nothing happens when logging was configured without publishing."""
    if _Installed.publisher is not None:
        _Installed.publisher.attach(nc, subjects)


async def stop_publishing_logs(nc: NATS, timeout: float = 2.0) -> None:
    """Before `nc` closes: publish the queued lines (for up to `timeout` seconds), then leave
    `nc` alone."""
    if _Installed.publisher is not None:
        await _Installed.publisher.detach(nc, timeout)


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
