"""The greeter example runs exactly as docs/agents.md tells a user to run it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def greeter_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("greeter"),
        CORTEX_AGENT_PATH=str(REPO / "examples" / "agents"),
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


def cortex(stack: Stack, *args: str) -> str:
    env = {**os.environ, "CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}
    done = subprocess.run(
        [CORTEX, *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, f"cortex {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_the_documented_greeter_walkthrough(greeter_stack: Stack) -> None:
    cortex(greeter_stack, "templates", "register", "-f", "examples/greeter-template.yaml")
    cortex(greeter_stack, "agents", "create", "-f", "examples/greeter-agent.yaml", "--deploy")
    deadline = time.monotonic() + 30
    while True:
        view = json.loads(cortex(greeter_stack, "agents", "get", "greeter", "--json"))
        if view["status"] == "running" and view["ready_replicas"] == 2:
            break
        assert time.monotonic() < deadline, view
        time.sleep(0.3)
    replies = [
        json.loads(
            cortex(greeter_stack, "agents", "send", "greeter", '{"name": "Ada"}', "--wait", "5")
        )
        for _ in range(6)
    ]
    assert {r["text"] for r in replies} == {"Good morning, Ada!"}
    assert len({r["replica"] for r in replies}) == 2  # both replicas take their share
    cortex(greeter_stack, "agents", "delete", "greeter", "--grace", "2")
