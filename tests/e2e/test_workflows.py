"""Workflows as a user runs them over HTTP: parallel fan-out, HTTP steps, retries, cancel,
live events, and a workflow service killed in the middle of a parallel group."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually, finished_execution
from tests.support.ports import free_port
from tests.support.stack import ADMIN_TOKEN, FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

FANOUT = {  # exactly as the issue writes it
    "name": "fanout",
    "version": "1",
    "params": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    "steps": [
        {"id": "first", "type": "agent", "agent": "wf-echo", "input": {"text": "${params.text}"}},
        {
            "parallel": [
                {
                    "id": "a",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "a", "prev": "${steps.first.output}"},
                },
                {
                    "id": "b",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "b"},
                    "retry": {"attempts": 3, "backoff": "1s"},
                },
                {
                    "id": "c",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "c"},
                    "timeout": "10s",
                },
            ]
        },
    ],
}


class _Inventory(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "stock": 42}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def inventory() -> Iterator[str]:
    """A local HTTP server for `http` steps."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Inventory)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("workflows")
    # The inventory server listens on loopback, which http steps may not reach by default.
    stack = Stack(
        root, CORTEX_AGENT_PATH=str(REPO), CORTEX_HTTP_STEP_ALLOW="127.0.0.1", **FAST_HEALTH
    ).start()
    with stack.client() as api:
        api.post(
            "/api/v1/templates",
            json={
                "name": "step-worker",
                "handler": "tests.support.sample_agents:StepWorker",
                "concurrency": 16,
            },
        )
        for name in ("wf-echo", "worker"):
            api.post(
                "/api/v1/agents",
                json={
                    "name": name,
                    "template": "step-worker",
                    "deploy": True,
                    "config": {"log": str(root / f"{name}.log")},
                },
            )
        eventually(
            lambda: api.get("/api/v1/agents", params={"status": "running"}).json()["total"] >= 2,
            what="workers running",
        )
    yield stack
    stack.stop()


def run(
    api: httpx.Client, template: dict[str, Any], params: dict[str, Any], timeout: float = 60
) -> dict[str, Any]:
    registered = api.post("/api/v1/workflow-templates", json=template)
    assert registered.status_code in (201, 200), registered.text
    workflow = api.post("/api/v1/workflows", json={"template": template["name"], "params": params})
    assert workflow.status_code == 201, workflow.text
    started = api.post(f"/api/v1/workflows/{workflow.json()['id']}/execute")
    assert started.status_code == 202, started.text
    execution_id = started.json()["id"]
    return finished_execution(api, execution_id, timeout)


def steps(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in execution["steps"]}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_issue_s_fanout_template_runs_as_written(platform: Stack) -> None:
    with platform.client() as api:
        done = run(api, FANOUT, {"text": "hi"})
        assert done["status"] == "succeeded", done
        by_id = steps(done)
        assert by_id["first"]["output"]["echo"] == {"text": "hi"}
        assert by_id["a"]["output"]["echo"]["prev"] == by_id["first"]["output"]
        assert {by_id[s]["parent"] for s in "abc"} == {by_id["a"]["parent"]}
        assert all(
            by_id[s]["status"] == "succeeded" and by_id[s]["attempts"] == 1
            for s in ("first", "a", "b", "c")
        )
        bad = api.post("/api/v1/workflows", json={"template": "fanout", "params": {}})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"].endswith("text")


def test_sequence_parallel_group_and_http_step_with_overlapping_timeline(
    platform: Stack, inventory: str
) -> None:
    template = {
        "name": "restock",
        "version": "1",
        "params": {"type": "object", "properties": {"sku": {"type": "string"}}},
        "steps": [
            {"id": "lookup", "type": "http", "url": f"{inventory}/items/${{params.sku}}"},
            {
                "parallel": [
                    {
                        "id": f"quote-{n}",
                        "type": "agent",
                        "agent": "worker",
                        "input": {
                            "supplier": n,
                            "stock": "${steps.lookup.output.body.stock}",
                            "sleep": 1.0,
                        },
                    }
                    for n in ("x", "y", "z")
                ]
            },
            {"id": "best", "type": "transform", "expression": 'steps."quote-x".output.echo.stock'},
        ],
    }
    with platform.client() as api:
        done = run(api, template, {"sku": "ab-12"})
        assert done["status"] == "succeeded", done
        by_id = steps(done)
        assert by_id["lookup"]["output"]["status"] == 200
        assert by_id["lookup"]["output"]["body"] == {"path": "/items/ab-12", "stock": 42}
        assert by_id["quote-y"]["output"]["echo"]["stock"] == 42
        assert by_id["best"]["output"] == 42
        quotes = [by_id[f"quote-{n}"] for n in "xyz"]
        latest_start = max(at(q["started_at"]) for q in quotes)
        earliest_end = min(at(q["finished_at"]) for q in quotes)
        assert latest_start < earliest_end, "the parallel steps did not overlap"
        assert at(by_id["lookup"]["finished_at"]) <= min(at(q["started_at"]) for q in quotes)


def test_retries_succeed_within_the_attempts_and_fail_beyond_them(platform: Stack) -> None:
    def flaky(name: str, attempts: int) -> dict[str, Any]:
        return {
            "name": name,
            "steps": [
                {
                    "id": "call",
                    "type": "agent",
                    "agent": "worker",
                    "input": {"key": name, "fail_times": 2},
                    "retry": {"attempts": attempts, "backoff": "100ms"},
                }
            ],
        }

    with platform.client() as api:
        ok = run(api, flaky("retry-three", 3), {})
        assert ok["status"] == "succeeded", ok
        assert steps(ok)["call"]["attempts"] == 3
        failed = run(api, flaky("retry-two", 2), {})
        assert failed["status"] == "failed"
        assert "call" in failed["error"]
        assert "call 2 of retry-two failed on purpose" in failed["error"]
        assert steps(failed)["call"]["status"] == "failed"


def test_a_running_execution_is_cancelled_once(platform: Stack) -> None:
    template = {
        "name": "long-one",
        "steps": [
            {
                "id": "wait",
                "type": "agent",
                "agent": "worker",
                "input": {"sleep": 20},
                "timeout": "60s",
            }
        ],
    }
    with platform.client() as api:
        api.post("/api/v1/workflow-templates", json=template)
        workflow = api.post("/api/v1/workflows", json={"template": "long-one"}).json()
        execution = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()
        eventually(
            lambda: (
                steps(api.get(f"/api/v1/executions/{execution['id']}").json())["wait"]["status"]
                == "running"
            ),
            what="step running",
        )
        cancelled = api.post(f"/api/v1/executions/{execution['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        again = api.post(f"/api/v1/executions/{execution['id']}/cancel")
        assert again.status_code == 409


def follow(platform: Stack, execution_id: str) -> list[dict[str, Any]]:
    """Read an execution's event stream to its end: each message's `event`, `data` and, when
    it has one, `id`."""
    messages: list[dict[str, Any]] = []
    message: dict[str, Any] = {}
    with (
        httpx.Client(
            base_url=platform.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as http,
        http.stream("GET", f"/api/v1/executions/{execution_id}/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line:
                if "data" in message:
                    messages.append(message)
                message = {}
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                message["event"] = value
            elif field == "id":
                message["id"] = int(value)
            elif field == "data":
                message["data"] = json.loads(value)
    return messages


def test_live_events_stream_until_the_execution_ends(platform: Stack) -> None:
    template = {
        "name": "watched",
        "steps": [
            {"id": "one", "type": "agent", "agent": "worker", "input": {"sleep": 0.5}},
            {"id": "two", "type": "transform", "output": {"first": "${steps.one.output.echo}"}},
        ],
    }
    with platform.client() as api:
        api.post("/api/v1/workflow-templates", json=template)
        workflow = api.post("/api/v1/workflows", json={"template": "watched"}).json()
        executions = [
            api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()["id"] for _ in range(3)
        ]
    # Three followers at once, each of its own execution.
    followed: dict[str, list[dict[str, Any]]] = {}
    threads = [
        threading.Thread(target=lambda e=e: followed.__setitem__(e, follow(platform, e)))
        for e in executions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert set(followed) == set(executions)
    for execution_id, messages in followed.items():
        kinds = [m["event"] for m in messages]
        assert kinds[0] == "execution"
        assert "step.succeeded" in kinds
        assert messages[-1]["data"]["status"] == "succeeded"
        events = [m["data"] for m in messages if m["event"] != "execution"]
        assert {e["stream_id"] for e in events} == {f"execution-{execution_id}"}


def test_the_same_template_again_is_200_and_changes_nothing(platform: Stack) -> None:
    template = {"name": "again", "steps": [{"id": "t", "type": "transform", "output": 1}]}
    with platform.client() as api:
        first = api.post("/api/v1/workflow-templates", json=template)
        assert first.status_code == 201, first.text
        again = api.post("/api/v1/workflow-templates", json=template)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        versions = api.get("/api/v1/workflow-templates/again").json()["versions"]
        assert [v["version"] for v in versions] == ["1"]


def test_a_followed_execution_sends_each_event_once_in_order(platform: Stack) -> None:
    """Quick steps first, so that events are on their way while the stream opens (and the
    first view already holds some of them), then a slower one that keeps the stream open."""
    quick = [
        {"id": f"quick-{n}", "type": "agent", "agent": "worker", "input": {"n": n}}
        for n in range(3)
    ]
    template = {
        "name": "followed",
        "steps": [
            *quick,
            {"id": "slow", "type": "agent", "agent": "worker", "input": {"sleep": 1}},
            {"id": "done", "type": "transform", "output": "${steps.slow.output.echo}"},
        ],
    }
    with platform.client() as api:
        assert api.post("/api/v1/workflow-templates", json=template).status_code == 201
        workflow = api.post("/api/v1/workflows", json={"template": "followed"}).json()
        for _ in range(3):
            execution = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()
            messages = follow(platform, execution["id"])
            first, events = messages[0], [m for m in messages if m["event"] != "execution"]
            assert first["event"] == "execution"
            ids = [m["id"] for m in messages if "id" in m]
            assert len(set(ids)) == len(ids), ids  # each id once
            assert ids == sorted(ids), ids  # in order
            assert ids[0] == first["id"] == first["data"]["version"]
            assert all(e["id"] == e["data"]["version"] > first["id"] for e in events), ids
            assert messages[-1]["data"]["status"] == "succeeded"


def test_a_killed_workflow_service_resumes_without_rerunning_succeeded_steps(
    platform: Stack,
) -> None:
    log = Path(platform.root) / "worker.log"
    template = {
        "name": "survivor",
        "steps": [
            {
                "id": "prepare",
                "type": "agent",
                "agent": "worker",
                "input": {"tag": "survivor-prepare"},
            },
            {
                "parallel": [
                    {
                        "id": "quick",
                        "type": "agent",
                        "agent": "worker",
                        "input": {"tag": "survivor-quick", "sleep": 0.2},
                    },
                    {
                        "id": "slow-1",
                        "type": "agent",
                        "agent": "worker",
                        "input": {"tag": "survivor-slow-1", "sleep": 4},
                    },
                    {
                        "id": "slow-2",
                        "type": "agent",
                        "agent": "worker",
                        "input": {"tag": "survivor-slow-2", "sleep": 4},
                    },
                ]
            },
            {
                "id": "finish",
                "type": "agent",
                "agent": "worker",
                "input": {"tag": "survivor-finish"},
            },
        ],
    }
    with platform.client() as api:
        api.post("/api/v1/workflow-templates", json=template)
        workflow = api.post("/api/v1/workflows", json={"template": "survivor"}).json()
        execution = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()
        eventually(
            lambda: (
                steps(api.get(f"/api/v1/executions/{execution['id']}").json())["quick"]["status"]
                == "succeeded"
            ),
            what="the quick branch done",
        )
        os.kill(platform.child_pid("cortex.workflow"), signal.SIGKILL)
        done = eventually(
            lambda: (
                (e := api.get(f"/api/v1/executions/{execution['id']}").json())["status"]
                == "succeeded"
                and e
            ),
            timeout=90,
            what="the execution completed after the restart",
        )
    calls = Counter(line for line in log.read_text().splitlines() if line.startswith("survivor"))
    assert calls["survivor-prepare"] == 1
    assert calls["survivor-quick"] == 1
    assert calls["survivor-finish"] == 1
    assert all(calls[f"survivor-slow-{n}"] >= 1 for n in (1, 2))
    assert all(s["status"] == "succeeded" for s in done["steps"])
