"""The HTTP servers the platform runs (the gateway and every admin port) as a client sees them
on a kept-alive connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from litestar import Litestar, get

from cortex.kernel.service.admin import AdminServer, EmbeddedServer


def nodelay_of_accepted(server: uvicorn.Server) -> list[int]:
    """TCP_NODELAY of every connection the server has accepted and still holds."""
    flags = []
    for connection in server.server_state.connections:
        sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
        flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return flags


async def test_an_admin_port_answers_with_nagle_off_on_kept_alive_connections() -> None:
    """Nagle on a server's side holds each response of a kept-alive connection back until the
    client's delayed ACK (about 40 ms); the option must be on for every accepted connection."""
    admin = AdminServer("127.0.0.1", 0, lambda: {"ok": True})
    await admin.start()
    try:
        async with httpx.AsyncClient(base_url=admin.url) as http:
            for _ in range(3):
                assert (await http.get("/health")).status_code == 200
            flags = nodelay_of_accepted(admin._server)
    finally:
        await admin.stop()
    assert flags, "the kept-alive connection is gone"
    assert all(flags), flags


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"pong": "yes"}


@pytest.fixture
async def litestar_server() -> AsyncIterator[EmbeddedServer]:
    """The gateway's kind of server: a Litestar app on `EmbeddedServer`."""
    config = uvicorn.Config(
        Litestar([ping]), host="127.0.0.1", port=0, log_config=None, lifespan="off"
    )
    server = EmbeddedServer(config)
    task = await server.start_serving()
    yield server
    server.should_exit = True
    await asyncio.gather(task, return_exceptions=True)


async def test_the_gateways_kind_of_server_answers_with_nagle_off(
    litestar_server: EmbeddedServer,
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{litestar_server.port}") as http:
        for _ in range(3):
            assert (await http.get("/ping")).json() == {"pong": "yes"}
        flags = nodelay_of_accepted(litestar_server)
    assert flags
    assert all(flags), flags
