"""`cortex admin backup` of a platform under load, `cortex admin restore` into a new data dir,
and the platform started on it: agents, their state, topic subscriptions, dead letters, and
workflow executions (one finished, one running at the backup) are all back, and the running
one finishes. The CLI runs as an operator runs it, next to `cortex up`, on the same settings."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually, finished_execution
from tests.support.stack import CORTEX, FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SLOW = {
    "name": "slow-two",
    "steps": [
        {"id": "quick", "type": "agent", "agent": "bk-echo", "input": {"n": 1}},
        {"id": "long", "type": "agent", "agent": "bk-slow", "input": "${steps.quick.output}"},
    ],
}
QUICK = {
    "name": "quick-one",
    "steps": [{"id": "only", "type": "agent", "agent": "bk-echo", "input": {"n": 2}}],
}


def admin(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [CORTEX, "admin", *args], env=stack.env, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def running(api: httpx.Client, name: str, **body: Any) -> None:
    made = api.post("/api/v1/agents", json={"name": name, "deploy": True, **body})
    assert made.status_code == 201, made.text


def all_running(api: httpx.Client, count: int) -> None:
    eventually(
        lambda: api.get("/api/v1/agents", params={"status": "running"}).json()["total"] == count,
        timeout=60,
        what=f"{count} agents running",
    )


def execute(api: httpx.Client, template: dict[str, Any]) -> str:
    assert api.post("/api/v1/workflow-templates", json=template).status_code in (200, 201)
    workflow = api.post("/api/v1/workflows", json={"template": template["name"]}).json()
    started = api.post(f"/api/v1/workflows/{workflow['id']}/execute")
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def snapshot(api: httpx.Client) -> dict[str, Any]:
    """What a user would compare: everything but what changes on its own (times, replicas)."""
    agents = api.get("/api/v1/agents", params={"limit": 1000}).json()["items"]
    return {
        "agents": sorted((a["name"], a["template"], a["status"], a["replicas"]) for a in agents),
        "state": api.get("/api/v1/agents/bk-ledger/state").json()["value"],
        "subscriptions": sorted(
            s["topic"] for s in api.get("/api/v1/agents/bk-echo/subscriptions").json()
        ),
        "dead": sorted(d["id"] for d in api.get("/api/v1/dlq").json()["items"]),
    }


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[tuple[Stack, Stack]]:
    env = {"CORTEX_AGENT_PATH": str(REPO), **FAST_HEALTH}
    first, second = Stack(tmp_path / "first", **env), Stack(tmp_path / "second", **env)
    yield first, second
    first.stop()
    second.stop()


def test_a_backup_under_load_comes_back_whole_and_running_executions_finish(
    stacks: tuple[Stack, Stack], tmp_path: Path
) -> None:
    first, second = stacks
    first.start()
    archive = tmp_path / "cortex.backup"
    with first.client() as api:
        for name, handler, extra in (
            ("bk-refuses", "tests.support.sample_agents:Refuses", {"max_deliveries": 1}),
            ("bk-slow", "tests.support.sample_agents:Slow", {}),
        ):
            made = api.post("/api/v1/templates", json={"name": name, "handler": handler, **extra})
            assert made.status_code == 201, made.text
        running(api, "bk-echo", template="echo")
        running(api, "bk-ledger", template="echo")
        running(api, "bk-refuses", template="bk-refuses")
        running(api, "bk-slow", template="bk-slow", config={"seconds": 5})
        api.post("/api/v1/agents", json={"name": "bk-idle", "template": "echo"})
        all_running(api, 4)
        assert api.put("/api/v1/agents/bk-ledger/state", json={"total": 42}).is_success
        for topic in ("news.eu", "news.us"):
            made = api.post("/api/v1/agents/bk-echo/subscriptions", json={"topic": topic})
            assert made.is_success, made.text
        dead = api.post(
            "/api/v1/agents/bk-refuses/messages", params={"confirm": 30}, json={"payload": "x"}
        )
        assert dead.json()["status"] == "dead_lettered", dead.text
        finished = finished_execution(api, execute(api, QUICK), 60)
        assert finished["status"] == "succeeded"
        slow = execute(api, SLOW)
        eventually(
            lambda: (
                {
                    s["id"]: s["status"]
                    for s in api.get(f"/api/v1/executions/{slow}").json()["steps"]
                }.get("long")
                == "running"
            ),
            what="the long step running",
        )
        before = snapshot(api)

        # Load while the backup runs: messages to an agent, state writes.
        stop = threading.Event()
        sent = []

        def load() -> None:
            with first.client() as busy:
                n = 0
                while not stop.is_set():
                    n += 1
                    busy.post("/api/v1/agents/bk-echo/messages", json={"payload": {"n": n}})
                    busy.patch("/api/v1/agents/bk-idle/state", json={"n": n})
                    sent.append(n)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            eventually(lambda: len(sent) >= 30, what="the load under way")
            acknowledged = sent[-1]  # written before the backup began: it must come back
            said = ok(admin(first, "backup", str(archive)))
        finally:
            stop.set()
            loader.join()
        assert sent[-1] > acknowledged, "the load went on during the backup"
        assert api.get(f"/api/v1/executions/{slow}").json()["status"] == "running"
        assert f"wrote {archive}" in said
    first.stop()

    # A new data dir: the secrets key goes with the backup (docs/operations.md).
    second.data_dir.mkdir(parents=True)
    shutil.copy(first.data_dir / "secrets.key", second.data_dir / "secrets.key")
    restored = ok(admin(second, "restore", str(archive)))
    assert f"restored {archive}" in restored
    refused = admin(second, "restore", str(archive))
    assert refused.returncode != 0
    assert "restore into a new CORTEX_DATA_DIR" in refused.stderr

    second.start()
    with second.client() as api:
        all_running(api, 4)
        assert snapshot(api) == before
        written = api.get("/api/v1/agents/bk-idle/state").json()["value"]["n"]
        assert acknowledged <= written <= sent[-1]
        again = finished_execution(api, finished["id"], 10)
        assert again["status"] == "succeeded"
        assert again["steps"] == finished["steps"]
        done = finished_execution(api, slow, 90)
        assert done["status"] == "succeeded", done
        # And it works on: a new message is answered.
        answer = api.post(
            "/api/v1/agents/bk-echo/messages", params={"confirm": 30}, json={"payload": "hi"}
        )
        assert answer.json()["status"] == "acked", answer.text
