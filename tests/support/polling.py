"""Waiting in tests for something the platform does in the background."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from cortex.kernel.errors import NotFound

T = TypeVar("T")


async def settled(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Await `probe` until `check` holds for what it returns; NotFound counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if check(last):
                return last  # type: ignore[no-any-return]
        except NotFound as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")
        await asyncio.sleep(0.02)


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Call `check` until it returns something true (an HTTP error or a failed assertion
    counts as "not yet"), and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, AssertionError, KeyError, TypeError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")


def until(check: Callable[[], tuple[bool, Any]], what: str, timeout: float = 30.0) -> Any:
    """Call `check` (done, what was seen) until done; fails with the last thing seen."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = check()
        if done:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:g}s; last seen: {seen}")
        time.sleep(0.3)


def finished_execution(api: httpx.Client, execution_id: str, timeout: float) -> dict[str, Any]:
    """The execution's view once it is no longer running. An error answer meanwhile (a 504
    while a workflow replica dies) is "not yet", never the view."""

    def check() -> dict[str, Any] | None:
        reply = api.get(f"/api/v1/executions/{execution_id}")
        reply.raise_for_status()
        view: dict[str, Any] = reply.json()
        return view if view["status"] != "running" else None

    return dict(eventually(check, timeout=timeout, what=f"execution {execution_id} finished"))
