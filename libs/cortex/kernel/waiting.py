"""Waiting with a time limit, in ways that always end: on an event, or on a step of a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set.

    ``asyncio.wait_for`` on Python 3.11 can swallow a cancellation that arrives in the
    same loop turn as the event being set, leaving a background loop that never stops
    (seen as ``stop()`` hanging). ``asyncio.timeout`` does not have that race.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def within(step: Awaitable[object], timeout: float) -> bool:
    """Run ``step`` for at most ``timeout`` seconds; True when it finished in time.

    A step that overruns is cancelled and left behind, not awaited: some library code
    (nats-py's drain, for one) swallows a cancellation and goes on waiting, and a process's
    stop must end even then.
    """
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done or task.cancelled():
        task.cancel()
        return False
    task.result()  # the step's own error, if it raised
    return True


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again while it has not.

    One ``cancel()`` is not always enough: ``asyncio.wait_for`` on Python 3.11 (used inside
    nats-py's requests and flushes) returns a result that arrived in the same loop turn as the
    cancellation and drops the cancellation, and a background loop then runs on for good.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
