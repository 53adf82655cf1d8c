"""Time-limited waits must end: the way a process's stop is kept from hanging."""

from __future__ import annotations

import asyncio
import time

import pytest

from cortex.kernel.waiting import cancel_and_wait, wait_event, within


async def test_within_reports_a_step_that_finished_in_time() -> None:
    assert await within(asyncio.sleep(0.01), timeout=1.0) is True


async def test_within_leaves_behind_a_step_that_swallows_its_cancellation() -> None:
    # The shape of nats-py's drain: it catches the cancellation and goes on waiting.
    release = asyncio.Event()
    finished = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()
        finished.set()

    began = time.monotonic()
    assert await within(stubborn(), timeout=0.1) is False
    assert time.monotonic() - began < 1.0
    assert not finished.is_set()
    release.set()
    await asyncio.sleep(0.01)
    assert finished.is_set()


async def test_within_raises_the_steps_own_error() -> None:
    async def broken() -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        await within(broken(), timeout=1.0)


async def test_within_cancels_the_step_when_it_is_cancelled_itself() -> None:
    step_cancelled = asyncio.Event()

    async def long_step() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            step_cancelled.set()
            raise

    waiter = asyncio.create_task(within(long_step(), timeout=60))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert step_cancelled.is_set()


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 1.0) is True


async def test_cancel_and_wait_ends_a_loop_that_dropped_one_cancellation() -> None:
    # A loop whose first cancellation is lost (as asyncio.wait_for on 3.11 can lose it).
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        dropped = False
        while True:
            rounds += 1
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if dropped:
                    raise
                dropped = True

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.03)
    began = time.monotonic()
    await cancel_and_wait(task)
    assert task.cancelled()
    assert time.monotonic() - began < 1.0
