"""Connecting to NATS the way a long-lived platform process must.

Reconnects forever (a service outlives a nats-server restart), keeps trying the first connect
until the server appears (children of `cortex up` may start before it), and reports its state
to a callback so that `/ready` can follow it. Every server of `CORTEX_NATS_URL` is in the pool,
so a client of a cluster moves to another server when the one it was on goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import nats
from nats.aio.client import Client as NATS

from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import EVERY_PROCESS, counter, gauge
from cortex.kernel.settings import Settings, redact_url
from cortex.kernel.waiting import within

log = get_logger()

CONNECTED = gauge(
    "cortex_nats_connected",
    "1 while this process is connected to NATS",
    exported_by=EVERY_PROCESS,
)
RECONNECTS = counter(
    "cortex_nats_reconnects_total", "Reconnections to NATS after a loss", exported_by=EVERY_PROCESS
)


async def connect(
    settings: Settings,
    name: str,
    *,
    on_state: Callable[[bool], None] | None = None,
    first_connect_timeout: float | None = None,
) -> NATS:
    """Connect as `name`. Keeps retrying the first connection with backoff until
    `first_connect_timeout` (forever if None); raises the last error after it."""
    servers = settings.nats_servers
    url = ", ".join(redact_url(server) for server in servers)

    def report(state: bool) -> None:
        CONNECTED.set(1 if state else 0)
        if on_state:
            on_state(state)

    async def disconnected() -> None:
        report(False)
        if not nc.is_closed:  # a close of our own is no news
            log.warning("nats disconnected", url=url)

    async def reconnected() -> None:
        RECONNECTS.inc()
        log.info("nats reconnected", url=_connected(nc), servers=url)
        report(True)

    async def error(exc: Exception) -> None:
        log.debug("nats error", error=str(exc))

    loop = asyncio.get_running_loop()
    deadline = None if first_connect_timeout is None else loop.time() + first_connect_timeout
    delay = 0.1
    while True:
        try:
            nc = await nats.connect(
                servers=servers,
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=2,
                ping_interval=10,
                max_outstanding_pings=3,
                user_credentials=settings.nats_creds or None,
                nkeys_seed=settings.nats_nkey or None,
                inbox_prefix=settings.nats_inbox_prefix,
                tls=settings.nats_tls(),
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except Exception as exc:  # nats raises a zoo of types for "not there yet"
            if deadline is not None and loop.time() + delay > deadline:
                raise
            log.info("waiting for nats", url=url, error=str(exc) or type(exc).__name__)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
            continue
        report(True)
        return nc


async def disconnect(nc: NATS, grace: float) -> bool:
    """Drain within `grace` (subscriptions finish what they hold, publishes are flushed), else
    close; True when it drained. Always ends: nats-py's drain can swallow a cancellation and
    wait on, so it is left behind rather than awaited past `grace`."""
    if nc.is_closed:
        return True
    try:
        if await within(nc.drain(), grace):
            return True
    except Exception as exc:
        log.debug("nats drain failed", error=str(exc) or repr(exc))
    with contextlib.suppress(Exception):
        await within(nc.close(), 2)
    return False


def _connected(nc: NATS) -> str:
    """The server `nc` is on now, without credentials."""
    url = nc.connected_url
    return f"{url.scheme}://{url.hostname}:{url.port}" if url else ""
