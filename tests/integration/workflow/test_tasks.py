"""HTTP, state and transform steps, and agent steps by pool, against real services and a real
local HTTP server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import uvicorn

from cortex.contracts.pools import PoolSpec, PoolView
from cortex.contracts.state import GetState, StateView
from cortex.kernel.service.admin import EmbeddedServer, Receive, Scope, Send
from tests.integration.workflow.conftest import Stack, spec, step


async def shop(scope: Scope, receive: Receive, send: Send) -> None:
    """`GET /items` (JSON), `POST /echo` (the JSON body back, 201), `GET /text`, else 404."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    status, kind, answer = 404, b"text/plain", b"no such thing"
    if path == "/items" and method == "GET":
        items = [{"name": "pen", "n": 1}, {"name": "ink", "n": 2}, {"name": "pad", "n": 3}]
        status, kind, answer = 200, b"application/json", json.dumps({"items": items}).encode()
    elif path == "/echo" and method == "POST":
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        echoed = {"body": json.loads(body), "x_run": headers.get("x-run")}
        status, kind, answer = 201, b"application/json", json.dumps(echoed).encode()
    elif path == "/text":
        status, kind, answer = 200, b"text/plain; charset=utf-8", b"plain words"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    config = uvicorn.Config(shop, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = EmbeddedServer(config)
    task = await server.start_serving()
    yield f"http://127.0.0.1:{server.port}"
    server.should_exit = True
    await task


async def test_http_steps_with_substituted_urls_headers_and_bodies(
    stack: Stack, base_url: str
) -> None:
    await stack.register(
        spec(
            "calls",
            [
                {"id": "list", "type": "http", "url": "${params.base}/items"},
                {
                    "id": "post",
                    "type": "http",
                    "method": "POST",
                    "url": "${params.base}/echo",
                    "headers": {"X-Run": "run-${params.n}"},
                    "body": {
                        "first": "${steps.list.output.body.items[0].name}",
                        "n": "${params.n}",
                    },
                },
                {"id": "text", "type": "http", "url": "${params.base}/text"},
                {
                    "id": "gone",
                    "type": "http",
                    "url": "${params.base}/missing",
                    "expect_status": [404],
                },
            ],
        )
    )
    view = await stack.run("calls", {"base": base_url, "n": 7})
    assert view.status == "succeeded", view.error
    listed = step(view, "list").output
    assert listed["status"] == 200
    assert listed["headers"]["content-type"] == "application/json"
    assert listed["body"]["items"][2] == {"name": "pad", "n": 3}
    posted = step(view, "post").output
    assert (posted["status"], posted["body"]) == (
        201,
        {"body": {"first": "pen", "n": 7}, "x_run": "run-7"},
    )
    assert step(view, "text").output["body"] == "plain words"
    assert (step(view, "gone").output["status"], step(view, "gone").output["body"]) == (
        404,
        "no such thing",
    )

    await stack.register(
        spec("strict", [{"id": "get", "type": "http", "url": f"{base_url}/missing"}])
    )
    failed = await stack.run("strict")
    assert failed.status == "failed"
    assert failed.error == (
        f"step get failed after 1 attempt: GET {base_url}/missing answered 404 "
        "(expected 2xx): no such thing"
    )


async def test_state_steps_and_both_kinds_of_transform(stack: Stack) -> None:
    agent = await stack.agent("wf-worker", "wf-worker")
    await stack.register(
        spec(
            "keeper",
            [
                {
                    "id": "put",
                    "type": "state",
                    "agent": "wf-worker",
                    "op": "put",
                    "value": {"count": "${params.n}", "tags": ["a"]},
                },
                {
                    "id": "patch",
                    "type": "state",
                    "agent": agent.id,
                    "op": "patch",
                    "value": {"extra": True, "tags": None},
                },
                {"id": "get", "type": "state", "agent": "wf-worker", "op": "get"},
                {
                    "id": "pick",
                    "type": "transform",
                    "expression": "{count: steps.get.output.count, keys: keys(steps.get.output)}",
                },
                {
                    "id": "shape",
                    "type": "transform",
                    "output": {
                        "n": "${steps.pick.output.count}",
                        "text": "n=${params.n}",
                        "all": "${steps.get.output}",
                    },
                },
            ],
        )
    )
    view = await stack.run("keeper", {"n": 3})
    assert view.status == "succeeded", view.error
    assert step(view, "put").output == {"count": 3, "tags": ["a"]}
    assert step(view, "patch").output == {"count": 3, "extra": True}
    assert step(view, "get").output == {"count": 3, "extra": True}
    assert step(view, "pick").output == {"count": 3, "keys": ["count", "extra"]}
    assert step(view, "shape").output == {
        "n": 3,
        "text": "n=3",
        "all": {"count": 3, "extra": True},
    }
    state = await stack.client.call("registry", "state.get", GetState(agent.id), StateView)
    assert (state.value, state.writer) == ({"count": 3, "extra": True}, f"workflow:{view.id}")


async def test_agent_steps_by_pool_and_by_name_in_pool(stack: Stack) -> None:
    await stack.client.call("lifecycle", "pool.create", PoolSpec(name="wfpool"), PoolView)
    await stack.agent("wf-p1", "wf-worker", pool="wfpool")
    await stack.agent("wf-p2", "wf-worker", pool="wfpool")
    await stack.register(
        spec(
            "pooled",
            [
                {
                    "parallel": [
                        {"id": f"s{i}", "type": "agent", "pool": "wfpool", "input": {"i": i}}
                        for i in range(4)
                    ]
                },
                {"id": "named", "type": "agent", "agent": "wf-p2.wfpool", "input": {}},
                {
                    "id": "wrong",
                    "type": "agent",
                    "agent": "wf-p2.other",
                    "input": {},
                    "on_error": "continue",
                },
            ],
        )
    )
    view = await stack.run("pooled")
    assert view.status == "succeeded", view.error
    served = sorted(step(view, f"s{i}").output["agent"] for i in range(4))
    assert served == ["wf-p1", "wf-p1", "wf-p2", "wf-p2"]  # in turn
    assert step(view, "named").output["agent"] == "wf-p2"
    assert (
        step(view, "wrong").error == "agent 'wf-p2' is not in pool 'other' (it is in pool 'wfpool')"
    )
