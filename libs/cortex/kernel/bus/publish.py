"""Publishing to JetStream through a moment without a stream leader.

On a cluster, a stream whose leader's node went away answers no publish until the others have
elected a new one (a second or two); a single server restarting answers none either. A publish
that gets no answer is sent again, with the same `Nats-Msg-Id`, so the stream keeps one copy
even when the first one was stored after all, until `within` seconds have passed.
"""

from __future__ import annotations

import asyncio

from nats.errors import ConnectionReconnectingError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from cortex.kernel.logging import get_logger

log = get_logger()

TRANSIENT = (
    NoStreamResponseError,
    NoRespondersError,
    ServiceUnavailableError,
    ConnectionReconnectingError,
    NatsTimeoutError,
    TimeoutError,
)
"""What a stream without a leader, or a connection moving to another server, looks like."""

ATTEMPT_TIMEOUT = 5.0


async def publish_durably(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    *,
    within: float = 30.0,
) -> PubAck:
    """Publish until the stream acknowledges, for up to `within` seconds; raises the last
    error after that. `headers` must carry the message's `Nats-Msg-Id`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.1
    while True:
        left = deadline - loop.time()
        try:
            return await js.publish(
                subject, payload, headers=headers, timeout=max(0.5, min(ATTEMPT_TIMEOUT, left))
            )
        except TRANSIENT as exc:
            if loop.time() + pause >= deadline:
                raise
            log.info(
                "publish not acknowledged; sending it again",
                subject=subject,
                error=str(exc) or type(exc).__name__,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)
