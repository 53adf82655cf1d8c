"""Central logs through the gateway: every process's lines, found by what a user knows (an
agent, an execution, a request), followed live, and printed by `cortex logs`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex.cli.sse import ServerSentEvent, parse_events
from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("logs"), CORTEX_AGENT_PATH=str(REPO), **FAST_HEALTH
    ).start()
    with running.client() as api:
        for name, handler in (("narrator", "Narrator"), ("refuser", "Refuses")):
            api.post(
                "/api/v1/templates",
                json={"name": name, "handler": f"tests.support.sample_agents:{handler}"},
            ).raise_for_status()
    yield running
    running.stop()


def lines(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    reply = api.get("/api/v1/logs", params=query)
    reply.raise_for_status()
    return [item["line"] for item in reply.json()["items"]]


def running_agent(api: httpx.Client, name: str, template: str) -> str:
    created = api.post("/api/v1/agents", json={"name": name, "template": template, "deploy": True})
    created.raise_for_status()
    agent_id = str(created.json()["id"])
    eventually(
        lambda: api.get(f"/api/v1/agents/{agent_id}").json()["status"] == "running",
        what=f"{name} running",
    )
    return agent_id


def test_an_agents_creation_is_found_by_its_id_within_two_seconds(stack: Stack) -> None:
    with stack.client() as api:
        created = api.post(
            "/api/v1/agents", json={"name": "scribe", "template": "narrator", "deploy": True}
        )
        created.raise_for_status()
        agent_id = created.json()["id"]
        found = eventually(
            lambda: [
                line for line in lines(api, agent=agent_id) if line["event"] == "agent created"
            ],
            timeout=2.0,
            what="the lifecycle line of the new agent",
        )
    (line,) = found
    assert (line["service"], line["level"], line["agent_name"]) == ("lifecycle", "info", "scribe")
    assert line["correlation_id"]


def test_an_agents_own_lines_carry_its_id_name_and_instance(stack: Stack) -> None:
    with stack.client() as api:
        agent_id = running_agent(api, "storyteller", "narrator")
        sent = api.post(
            "/api/v1/agents/storyteller/messages",
            params={"wait": 30},
            json={"payload": {"chapter": 1}},
        )
        sent.raise_for_status()
        instance = api.get(f"/api/v1/agents/{agent_id}").json()["instances"][0]["id"]
        # By name: the gateway finds the agent's id.
        (line,) = eventually(
            lambda: lines(api, agent="storyteller", service="host", text="narrating"),
            what="the agent's line",
        )
    assert (line["agent_id"], line["agent_name"], line["instance_id"]) == (
        agent_id,
        "storyteller",
        instance,
    )
    assert json.loads(line["text"]) == {"chapter": 1}


def test_a_workflows_lines_are_found_by_its_execution_and_hold_the_failed_steps_error(
    stack: Stack,
) -> None:
    with stack.client() as api:
        running_agent(api, "naysayer", "refuser")
        api.post(
            "/api/v1/workflow-templates",
            json={
                "name": "doomed",
                "steps": [
                    {
                        "id": "ask",
                        "type": "agent",
                        "agent": "naysayer",
                        "input": {"question": "please"},
                        "retry": {"attempts": 1},
                    }
                ],
            },
        ).raise_for_status()
        workflow = api.post("/api/v1/workflows", json={"template": "doomed"}).json()
        execution_id = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()["id"]
        eventually(
            lambda: api.get(f"/api/v1/executions/{execution_id}").json()["status"] == "failed",
            what="the execution failed",
        )
        found = eventually(
            lambda: [
                line
                for line in lines(api, execution=execution_id)
                if "cannot handle" in json.dumps(line)
            ],
            what="the step's error among the execution's lines",
        )
        every = lines(api, execution=execution_id)
    assert every
    assert all(line["execution_id"] == execution_id for line in every)
    assert any(line["service"] == "workflow" for line in found)


def test_the_live_stream_goes_on_from_a_page_and_resumes_after_the_last_line_seen(
    stack: Stack,
) -> None:
    with stack.client() as api:
        running_agent(api, "chronicler", "narrator")
        page = api.get("/api/v1/logs", params={"agent": "chronicler", "limit": 1}).json()

        def tell(chapter: int) -> None:
            api.post(
                "/api/v1/agents/chronicler/messages",
                params={"wait": 30},
                json={"payload": {"chapter": chapter}},
            ).raise_for_status()

        query = {"agent": "chronicler", "text": "narrating"}
        with api.stream(
            "GET", "/api/v1/logs/stream", params={**query, "after": page["last_seq"]}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            tell(1)
            first = _next_log(stream.iter_lines())
        assert json.loads(first.data)["line"]["text"] == '{"chapter":1}'

        tell(2)
        # A client that lost its stream comes back with the id of the last event it got.
        with api.stream(
            "GET",
            "/api/v1/logs/stream",
            params=query,
            headers={"Last-Event-ID": first.id or ""},
        ) as stream:
            again = _next_log(stream.iter_lines())
        assert json.loads(again.data)["line"]["text"] == '{"chapter":2}'
        assert int(again.id or 0) > int(first.id or 0)


def _next_log(stream_lines: Iterator[str]) -> ServerSentEvent:
    for event in parse_events(stream_lines):
        if event.event == "log":
            return event
    raise AssertionError("the stream ended without a line")


def test_cortex_logs_prints_the_lines_a_user_asks_for(stack: Stack) -> None:
    with stack.client() as api:
        running_agent(api, "bard", "narrator")
        api.post(
            "/api/v1/agents/bard/messages", params={"wait": 30}, json={"payload": {"verse": 1}}
        ).raise_for_status()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env |= {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}

    def cortex_logs(*args: str) -> str:
        done = subprocess.run(
            [CORTEX, "logs", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = eventually(
        lambda: cortex_logs("--agent", "bard", "--grep", "narrating").splitlines(),
        what="cortex logs shows the agent's line",
    )
    (line,) = shown
    assert " info " in line
    assert " host " in line
    assert "narrating" in line
    assert "agent_name=bard" in line
    created = cortex_logs("--agent", "bard", "--service", "lifecycle", "--level", "info", "--json")
    events = [json.loads(row)["line"]["event"] for row in created.splitlines()]
    assert "agent created" in events
    # Oldest first, as a log reads.
    assert events.index("agent created") == 0
    assert cortex_logs("--agent", "bard", "--level", "error") == ""
    follow = subprocess.Popen(
        [CORTEX, "logs", "-f", "--agent", "bard", "--grep", "narrating", "-n", "1"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert "narrating" in follow.stdout.readline()  # the page
        with stack.client() as api:
            api.post(
                "/api/v1/agents/bard/messages",
                params={"wait": 30},
                json={"payload": {"verse": 2}},
            ).raise_for_status()
        assert '{"verse":2}' in follow.stdout.readline()  # then the new line
    finally:
        follow.terminate()
        follow.wait(timeout=10)
