"""The pipeline example runs exactly as docs/messaging.md tells a user to run it: a dispatcher
fans a job out over topic `work`, one worker agent's replicas share the parts, an aggregator
combines them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import until
from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["the quick brown fox", "jumps over", "the lazy dog", "and runs", "far away again today"]


@pytest.fixture(scope="module")
def pipeline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("pipeline"),
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


def test_the_documented_pipeline_walkthrough(pipeline_stack: Stack) -> None:
    stack = pipeline_stack
    for kind in ("dispatcher", "worker", "aggregator"):
        cortex(stack, "templates", "register", "-f", f"examples/pipeline/{kind}-template.yaml")
    for kind in ("worker", "aggregator", "dispatcher"):
        cortex(stack, "agents", "create", "-f", f"examples/pipeline/{kind}-agent.yaml", "--deploy")

    def all_running() -> tuple[bool, Any]:
        agents = json.loads(cortex(stack, "agents", "list", "--json"))["items"]
        ready = {a["name"]: (a["status"], a["ready_replicas"], a["replicas"]) for a in agents}
        return all(s == "running" and r == w for s, r, w in ready.values()), ready

    ready = until(all_running, "the three agents running")
    assert ready["worker"] == ("running", 3, 3)
    subscriptions = json.loads(cortex(stack, "subscriptions", "worker", "--json"))
    assert [(s["topic"], s["source"]) for s in subscriptions] == [("work", "template")]

    job = cortex(stack, "send", "dispatcher", json.dumps(TEXTS), "--wait", "10").strip()
    assert job

    def combined() -> tuple[bool, Any]:
        query = json.dumps({"job": job})
        result = json.loads(cortex(stack, "send", "aggregator", query, "--wait", "5"))
        return result["complete"], result

    result = until(combined, "the job complete")
    counts = [len(text.split()) for text in TEXTS]
    assert result["counts"] == counts
    assert result["words"] == sum(counts)
    assert (result["done"], result["parts"]) == (len(TEXTS), len(TEXTS))
    assert result["replicas"] >= 2  # the worker's replicas shared the parts

    # Each part reached the one worker agent once, as a copy of a `work` message, and was acked.
    copies = json.loads(cortex(stack, "messages", "worker", "--json"))["items"]
    assert len(copies) == len(TEXTS)
    assert {(m["kind"], m["topic"], m["status"]) for m in copies} == {("copy", "work", "acked")}
    sent = json.loads(cortex(stack, "messages", "dispatcher", "--direction", "out", "--json"))
    assert sorted(m["kind"] for m in sent["items"]) == ["topic"] * len(TEXTS)
    state = json.loads(cortex(stack, "state", "get", "aggregator", "--json"))["value"]
    assert state["jobs"][job]["complete"] is True

    # A bad job is answered, not retried.
    refused = json.loads(cortex(stack, "send", "dispatcher", "[]", "--wait", "10"))
    assert "error" in refused

    # The documented dead letter: a part the worker cannot count.
    cortex(stack, "publish", "work", '{"oops": 1}')

    def dead() -> tuple[bool, Any]:
        items = json.loads(cortex(stack, "dlq", "list", "--agent", "worker", "--json"))["items"]
        return len(items) == 1, items

    (letter,) = until(dead, "the bad part dead-lettered")
    assert letter["last_error"] == "KeyError: 'text'"
    assert letter["deliveries"] == 5
    assert '"oops": 1' in cortex(stack, "dlq", "show", letter["id"])
    cortex(stack, "dlq", "purge", letter["id"], "--yes")
    assert json.loads(cortex(stack, "dlq", "list", "--json"))["items"] == []
