"""When a test runs close to pytest-timeout's limit, print what every asyncio task awaits.

pytest-timeout shows the threads' stacks, and with every test on one event loop the main
thread is only ever seen waiting in `select`; the task stacks say which await never ended.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Generator

import pytest

_loops: list[asyncio.AbstractEventLoop] = []
WARN_BEFORE_TIMEOUT = 20.0


@pytest.fixture(scope="session", autouse=True)
async def _remember_the_loop() -> None:
    _loops.append(asyncio.get_running_loop())


def _dump(nodeid: str) -> None:
    loop = _loops[-1] if _loops else None
    if loop is None or not loop.is_running():
        return
    out = io.StringIO()
    print(f"\n+++ {nodeid} is about to time out; asyncio tasks: +++", file=out)
    for task in list(asyncio.all_tasks(loop)):
        print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
        task.print_stack(limit=12, file=out)
    sys.__stderr__.write(out.getvalue())
    sys.__stderr__.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0] if marker and marker.args else item.config.getini("timeout") or 0)
    timer = None
    if limit > WARN_BEFORE_TIMEOUT:
        timer = threading.Timer(limit - WARN_BEFORE_TIMEOUT, _dump, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
