"""Every process's admin port: `/health`, `/ready` and `/metrics`, on uvicorn.

A plain ASGI callable rather than a framework app: three fixed routes, no request bodies, and
whatever a process adds of the same kind (the gateway's `/metrics/nats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Generator, Mapping, MutableMapping
from typing import Any

import msgspec
import uvicorn
from prometheus_client import make_asgi_app

from cortex.contracts.gateway import Health, Readiness
from cortex.kernel import __version__

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def admin_app(
    readiness: Callable[[], dict[str, bool]], routes: Mapping[str, App] | None = None
) -> App:
    """`routes`: more paths, each answered by its ASGI app."""
    metrics = make_asgi_app()
    extra = dict(routes or {})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            await metrics(scope, receive, send)
            return
        if path in extra:
            await extra[path](scope, receive, send)
            return
        if path == "/health":
            await _json(send, 200, msgspec.json.encode(Health(version=__version__)))
        elif path == "/ready":
            checks = readiness()
            ready = all(checks.values())
            body = msgspec.json.encode(Readiness(ready=ready, checks=checks))
            await _json(send, 200 if ready else 503, body)
        else:
            await _json(send, 404, b'{"error":"not found"}')

    return app


async def _json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals.

    `uvicorn.Server.serve` installs SIGINT/SIGTERM handlers of its own and re-raises them on
    exit; the platform's processes shut down in a set order instead, so this keeps out of it.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def start_serving(self) -> asyncio.Task[None]:
        """Bind (raising `OSError` naming the address if it is taken) and start serving."""
        host, port = self.config.host, self.config.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Accepted sockets inherit the listener's protocol, and asyncio sets TCP_NODELAY only on
        # sockets whose protocol reads IPPROTO_TCP: with 0 here, Nagle's algorithm meets the
        # client's delayed ACK and every response on a kept-alive connection waits ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.set_inheritable(False)
        task = asyncio.create_task(self.serve(sockets=[sock]))
        while not self.started:
            if task.done():
                task.result()  # raises the bind error
                raise RuntimeError("HTTP server stopped during start")
            await asyncio.sleep(0.01)
        return task

    @property
    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])


class AdminServer:
    """uvicorn serving the admin app inside the process's own event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Callable[[], dict[str, bool]],
        routes: Mapping[str, App] | None = None,
    ) -> None:
        config = uvicorn.Config(
            admin_app(readiness, routes),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # A client that keeps its connection open must not hold up a process's stop.
            timeout_graceful_shutdown=2,
        )
        self._server = EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host

    async def start(self) -> None:
        self._task = await self._server.start_serving()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task:
            await asyncio.gather(self._task, return_exceptions=True)
