"""Waiting on an event with a time limit, in a way that can always be cancelled."""

from __future__ import annotations

import asyncio


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
