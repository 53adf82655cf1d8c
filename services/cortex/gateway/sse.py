"""Following a JetStream stream as server-sent events, for the gateway's live endpoints.

Each follower has an ordered consumer of its own (the server keeps it in memory and forgets it
when the follower goes), started where the client asks: after the last event it saw (its
`Last-Event-ID`, the stream sequence), at a time, or with what comes next. A quiet stream sends
a comment every `KEEPALIVE` seconds, so proxies keep the connection open. Every stream begins
with the comment `: following` once its consumer is in place.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated

from litestar.response import ServerSentEventMessage
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from cortex.gateway.document import optional_header
from cortex.gateway.state import Gateway
from cortex.kernel.errors import Invalid, Unavailable

KEEPALIVE = 15.0
"""Seconds between SSE comments that keep proxies from closing a quiet stream."""

FOLLOWING = "following"
"""The comment that opens every stream once its consumer is in place."""

Render = Callable[[Msg], ServerSentEventMessage | None]
"""An event for a stored message, or None to skip it; raising `StopAsyncIteration` ends the
stream."""


def comment(text: str) -> ServerSentEventMessage:
    """A comment line alone: Litestar adds an empty `data:` line unless told there is none,
    and a browser's EventSource dispatches that as an empty message."""
    return ServerSentEventMessage(comment=text, data=None)


EVENT_ID = "^[0-9]+$"

# Checked by `resume_after`, which names the header in its problem.
LastEventId = Annotated[
    str | None,
    optional_header(
        "Last-Event-ID",
        EVENT_ID,
        "A reconnecting client's last event `id`: the stream goes on after it (over `after`)",
    ),
]
_EVENT_ID = re.compile(EVENT_ID)


def resume_after(last_event_id: str | None, after: int | None) -> int | None:
    """The sequence to start after: a reconnecting client's `Last-Event-ID` over `after`."""
    if last_event_id is None:
        return after
    if not _EVENT_ID.fullmatch(last_event_id):
        raise Invalid.field("Last-Event-ID", "must be the id of an event sent")
    return int(last_event_id)


def start(after: int | None, since: datetime | None = None) -> ConsumerConfig:
    if after is not None:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
        )
    if since is not None:
        return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
    return ConsumerConfig(deliver_policy=DeliverPolicy.NEW)


def connected(gw: Gateway) -> None:
    """A 503 now, rather than a stream that says nothing."""
    if not gw.nats_connected:
        raise Unavailable("the gateway is not connected to NATS")


async def follow(
    gw: Gateway, subject: str, stream: str, config: ConsumerConfig, render: Render
) -> AsyncIterator[ServerSentEventMessage]:
    sub = await gw.nc.jetstream().subscribe(
        subject, stream=stream, ordered_consumer=True, idle_heartbeat=5.0, config=config
    )
    try:
        # From here on nothing stored is missed: a client that reads something else first
        # (the list this stream keeps current) can wait for this line.
        yield comment(FOLLOWING)
        while True:
            try:
                msg = await sub.next_msg(timeout=KEEPALIVE)
            except (NatsTimeoutError, TimeoutError):
                yield comment("keep-alive")
                continue
            try:
                event = render(msg)
            except StopAsyncIteration:
                return
            if event is not None:
                yield event
    finally:
        with contextlib.suppress(Exception):  # the connection may be gone with the consumer
            await sub.unsubscribe()
