"""What an `http` step may not reach or read, through the real workflow service: internal
addresses, the platform's own ports, redirects there, huge responses, credentials."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import uvicorn

from cortex.kernel.bus.discovery import scatter
from cortex.kernel.service.admin import EmbeddedServer, Receive, Scope, Send
from tests.integration.workflow.conftest import Stack, spec, step

HUGE = 2 * 1024**3
CHUNK = 64 * 1024


class Server:
    """`/away` redirects to the metadata endpoint, `/huge` streams 2 GiB, `/declared` says it
    has 2 GiB, `/odd` declares a charset Python does not know, `/secretive` answers with
    credentials in its headers, `/fail` says 500 and repeats the request's Authorization
    header."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = dict(scope["headers"])
        if path == "/away":
            location = b"http://169.254.169.254/latest/meta-data/"
            await send(
                {"type": "http.response.start", "status": 302, "headers": [(b"location", location)]}
            )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/huge":
            await self.stream(receive, send)
        elif path == "/declared":
            length = str(HUGE).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", length)],
                }
            )
            await send({"type": "http.response.body", "body": b"x" * CHUNK, "more_body": True})
        elif path == "/odd":
            kind = [(b"content-type", b"text/plain; charset=no-such-charset")]
            await send({"type": "http.response.start", "status": 200, "headers": kind})
            await send({"type": "http.response.body", "body": "fin\u00e9".encode()})
        elif path == "/secretive":
            answer = [
                (b"content-type", b"text/plain"),
                (b"set-cookie", b"session=abc123secret; HttpOnly"),
                (b"x-api-key", b"key-0123456789"),
                (b"x-request-id", b"r-42"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": answer})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            said = headers.get(b"authorization", b"")
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"refused: " + said})

    async def stream(self, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * CHUNK
        while self.sent < HUGE and not gone.is_set():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.sent += CHUNK
            await asyncio.sleep(0)
        watcher.cancel()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Server]]:
    app = Server()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    embedded = EmbeddedServer(config)
    task = await embedded.start_serving()
    yield f"http://127.0.0.1:{embedded.port}", app
    embedded.should_exit = True
    await task


def http_step(url: str, **fields: object) -> dict[str, object]:
    # Retries would hide a refusal that is not permanent: each of these fails at once.
    return {"id": "call", "type": "http", "url": url, "retry": {"attempts": 3}, **fields}


async def failure(stack: Stack, name: str, url: str, **fields: object) -> str:
    await stack.register(spec(name, [http_step(url, **fields)]))
    view = await stack.run(name)
    assert view.status == "failed"
    assert view.error is not None
    return view.error


async def test_the_metadata_endpoint_and_redirects_to_it_are_refused_naming_the_rule(
    stack: Stack, server: tuple[str, Server]
) -> None:
    error = await failure(stack, "metadata", "http://169.254.169.254/latest/meta-data/")
    assert error.startswith("step call failed after 1 attempt: GET http://169.254.169.254/")
    assert "169.254.169.254:80 is in the link-local range 169.254.0.0/16" in error
    assert "(rule 'link-local')" in error

    base, _ = server
    redirected = await failure(stack, "redirected", f"{base}/away")
    assert "after 1 attempt" in redirected
    assert "(rule 'link-local')" in redirected


async def test_the_platforms_own_ports_are_refused_though_loopback_is_allowed(
    stack: Stack, server: tuple[str, Server]
) -> None:
    infos = await scatter(stack.nc, "$SRV.INFO")
    admin = next(
        i["metadata"]["admin_url"]
        for i in infos
        if i["name"] == f"{stack.settings.nats_prefix}-registry"
    )
    port = urlsplit(admin).port
    error = await failure(stack, "admin", f"http://127.0.0.1:{port}/metrics")
    assert f"127.0.0.1:{port} is a port of the platform itself" in error
    assert "(rule 'platform-port')" in error

    # The allowed loopback server itself is reachable.
    base, _ = server
    await stack.register(spec("own", [http_step(f"{base}/secretive")]))
    assert (await stack.run("own")).status == "succeeded"


async def test_a_2_gib_response_fails_too_large_without_being_read(
    stack: Stack, server: tuple[str, Server]
) -> None:
    base, app = server
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    error = await failure(stack, "huge", f"{base}/huge")
    assert "too_large" in error
    assert "more than the 1048576 bytes an http step reads" in error
    assert "after 1 attempt" in error
    declared = await failure(stack, "declared", f"{base}/declared")
    assert f"answered {HUGE} bytes, more than the 1048576" in declared
    # The stream was cut off near the cap, and the process never held it.
    assert app.sent < 64 * 1024 * 1024
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak_after - peak_before < 64 * 1024 * 1024


async def test_credentials_are_not_shown_in_output_or_errors(
    stack: Stack, server: tuple[str, Server]
) -> None:
    base, _ = server
    await stack.register(spec("secrets", [http_step(f"{base}/secretive")]))
    view = await stack.run("secrets")
    headers = step(view, "call").output["headers"]
    assert headers["set-cookie"] == "***"
    assert headers["x-api-key"] == "***"
    assert headers["x-request-id"] == "r-42"

    host = base.removeprefix("http://")
    error = await failure(
        stack,
        "leaky",
        f"http://user:pa55word@{host}/fail?api_key=k-777",
        headers={"Authorization": "Bearer topsecret-123"},
        retry={"attempts": 1},
    )
    assert "topsecret-123" not in error
    assert "pa55word" not in error
    assert "k-777" not in error
    # httpx sent the URL's user and password as Basic auth, which the server repeated.
    assert "refused: Basic ***" in error
    assert "user:***@" in error
    assert "api_key=***" in error

    bearer = await failure(
        stack,
        "bearer",
        f"{base}/fail",
        headers={"Authorization": "Bearer topsecret-123"},
        retry={"attempts": 1},
    )
    assert bearer.endswith("answered 500 (expected 2xx): refused: ***")


async def test_a_charset_python_does_not_know_is_read_as_utf8(
    stack: Stack, server: tuple[str, Server]
) -> None:
    base, _ = server
    await stack.register(spec("odd", [http_step(f"{base}/odd")]))
    view = await stack.run("odd")
    assert view.status == "succeeded", view.error
    assert step(view, "call").output["body"] == "fin\u00e9"
