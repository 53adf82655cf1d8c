"""A service outlives a nats-server crash: it reconnects on its own and keeps its promises."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import pytest

from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.settings import load_settings
from tests.support.demo_service import Echoed, Notes, build
from tests.support.nats import NatsServerProcess

pytestmark = pytest.mark.slow


async def wait_until(check: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            if await check():  # type: ignore[operator]
                return
        except Exception:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_a_service_reconnects_after_nats_is_killed_and_restarted(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path / "nats")
    server.start()
    settings = load_settings(
        {},
        data_dir=str(tmp_path / "data"),
        nats_url=server.url,
        nats_prefix="restart",
        sqlite_synchronous="NORMAL",
    )
    runtime = build(settings)
    await runtime.start()
    client_nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    client = ServiceClient(client_nc, runtime.subjects, timeout=2)
    try:
        await client.call("demo", "note.add", {"note": "before"}, Notes)

        server.kill()
        async with httpx.AsyncClient(base_url=runtime.admin_url or "") as http:
            await wait_until(lambda: _status(http, 503))
            server.start()
            await wait_until(lambda: _status(http, 200))

        async def answers() -> bool:
            return (await client.call("demo", "echo", {"text": "x"}, Echoed)).text == "x"

        await wait_until(answers)
        notes = await client.call("demo", "note.add", {"note": "after"}, Notes)
        assert notes.notes == ["before", "after"]

        # Both events reached the (file-backed) events stream despite the crash.
        js = client_nc.jetstream()

        async def relayed() -> bool:
            return (await js.stream_info(runtime.subjects.events_stream)).state.messages == 2

        await wait_until(relayed)
    finally:
        await client_nc.close()
        await runtime.stop()
        server.stop()


async def _status(http: httpx.AsyncClient, code: int) -> bool:
    return (await http.get("/ready")).status_code == code
