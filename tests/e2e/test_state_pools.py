"""Agent state, pools, discovery and self-healing, as a user sees them over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("state"), CORTEX_AGENT_PATH=str(REPO), **FAST_HEALTH
    ).start()
    yield stack
    stack.stop()


def status(api: httpx.Client, ref: str) -> str:
    return str(api.get(f"/api/v1/agents/{ref}").json()["status"])


def count(api: httpx.Client, ref: str, by: int = 1) -> int:
    reply = api.post(
        f"/api/v1/agents/{ref}/messages", params={"wait": 10}, json={"payload": {"by": by}}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "replied", reply.text
    return int(reply.json()["reply"]["payload"]["count"])


def test_a_counter_continues_after_a_redeploy_and_purge_forgets_it(platform: Stack) -> None:
    with platform.client() as api:
        api.post(
            "/api/v1/agents",
            json={"name": "tally", "template": "counter", "replicas": 2, "deploy": True},
        )
        eventually(lambda: status(api, "tally") == "running", what="running")
        assert [count(api, "tally") for _ in range(5)] == [1, 2, 3, 4, 5]

        api.delete("/api/v1/agents/tally", params={"grace": 2})
        eventually(lambda: status(api, "tally") == "terminated", what="terminated")
        assert api.get("/api/v1/agents/tally/state").json()["value"] == {"count": 5}
        api.post("/api/v1/agents/tally/deploy")
        eventually(lambda: status(api, "tally") == "running", what="running again")
        assert count(api, "tally") == 6

        api.delete("/api/v1/agents/tally", params={"purge": "true", "grace": 1})
        eventually(lambda: api.get("/api/v1/agents/tally").status_code == 404, what="purged")
        again = api.post(
            "/api/v1/agents", json={"name": "tally", "template": "counter", "deploy": True}
        )
        assert again.status_code == 201
        state = api.get("/api/v1/agents/tally/state")
        assert state.json()["version"] == 0
        eventually(lambda: status(api, "tally") == "running", what="the new tally running")
        assert count(api, "tally") == 1


def test_state_over_http_with_etags(platform: Stack) -> None:
    with platform.client() as api:
        api.post("/api/v1/agents", json={"name": "notes", "template": "echo"})
        empty = api.get("/api/v1/agents/notes/state")
        assert (empty.status_code, empty.headers["etag"], empty.json()["version"]) == (
            200,
            '"0"',
            0,
        )
        first = api.put(
            "/api/v1/agents/notes/state", json={"topic": "a", "n": 1}, headers={"If-Match": '"0"'}
        )
        assert first.status_code == 200, first.text
        assert first.headers["etag"] == '"1"'
        assert first.json()["state"]["value"] == {"topic": "a", "n": 1}

        stale = api.put("/api/v1/agents/notes/state", json={"x": 1}, headers={"If-Match": '"0"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["details"]["current_version"] == 1
        # The registry knows the agent by id; the user named it, and reads that name.
        assert stale.json()["detail"] == "the state of agent notes is at version 1, not 0"

        patched = api.patch(
            "/api/v1/agents/notes/state",
            json={"n": None, "more": {"k": 2}},
            headers={"If-Match": '"1"'},
        )
        assert patched.json()["state"]["value"] == {"topic": "a", "more": {"k": 2}}
        history = api.get("/api/v1/agents/notes/state/history").json()["versions"]
        assert [v["version"] for v in history] == [2, 1, 0][: len(history)]
        assert history[1]["value"] == {"topic": "a", "n": 1}
        assert api.put(
            "/api/v1/agents/notes/state",
            content=b"{nope",
            headers={"content-type": "application/json"},
        ).status_code in (400, 422)
        assert api.put(
            "/api/v1/agents/notes/state", json=1, headers={"If-Match": "yesterday"}
        ).status_code in (400, 422)
        assert api.get("/api/v1/agents/nobody/state").status_code == 404


def test_two_writers_with_the_same_expected_version_exactly_one_wins(platform: Stack) -> None:
    with platform.client() as api:
        api.post("/api/v1/agents", json={"name": "contest", "template": "echo"})
        api.put("/api/v1/agents/contest/state", json={"v": 0})

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=platform.url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as api:
            return await asyncio.gather(
                *(
                    api.put(
                        "/api/v1/agents/contest/state", json={"v": i}, headers={"If-Match": '"1"'}
                    )
                    for i in range(1, 9)
                )
            )

    replies = asyncio.run(race())
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] + [412] * 7
    losers = [r.json() for r in replies if r.status_code == 412]
    assert all(p["details"]["current_version"] == 2 for p in losers)


def test_pools_and_discovery(platform: Stack) -> None:
    with platform.client() as api:
        assert api.post("/api/v1/pools", json={"name": "research"}).status_code == 201
        assert api.post("/api/v1/pools", json={"name": "research"}).status_code == 409
        missing = api.post(
            "/api/v1/agents", json={"name": "lost", "template": "echo", "pool": "nowhere"}
        )
        assert missing.status_code == 404
        created = api.post(
            "/api/v1/agents",
            json={
                "name": "scout",
                "template": "echo",
                "pool": "research",
                "replicas": 2,
                "deploy": True,
            },
        )
        assert created.json()["pool"] == "research"
        eventually(lambda: status(api, "scout") == "running", what="running")
        assert [
            a["name"]
            for a in api.get("/api/v1/agents", params={"pool": "research"}).json()["items"]
        ] == ["scout"]
        assert api.get("/api/v1/pools/research").json()["agents"] == 1

        found = api.get("/api/v1/discovery/scout.research").json()
        assert found["name"] == "scout"
        assert len(found["endpoints"]) == 2
        assert found["inbox"].endswith(found["agent_id"])
        picks = {
            api.get("/api/v1/discovery/scout", params={"pick": "round_robin"}).json()["picked"][
                "instance_id"
            ]
            for _ in range(4)
        }
        assert picks == {e["instance_id"] for e in found["endpoints"]}
        assert (
            api.get("/api/v1/discovery/scout", params={"pick": "least_loaded"}).json()["picked"]
            is not None
        )
        assert api.get("/api/v1/discovery/scout.elsewhere").status_code == 404

        assert api.delete("/api/v1/pools/research").status_code == 409
        api.put("/api/v1/agents/scout", json={"pool": ""})
        assert api.delete("/api/v1/pools/research").status_code == 200
        assert api.get("/api/v1/pools/research").status_code == 404


def test_a_crash_looping_agent_backs_off_then_fails(platform: Stack) -> None:
    with platform.client() as api:
        api.post(
            "/api/v1/templates",
            json={"name": "keeps-crashing", "handler": "tests.support.sample_agents:BrokenStart"},
        )
        api.post(
            "/api/v1/agents", json={"name": "crasher", "template": "keeps-crashing", "deploy": True}
        )
        retrying = eventually(
            lambda: (
                (v := api.get("/api/v1/agents/crasher").json())["status"] == "deploying"
                and "retrying" in (v["status_reason"] or "")
                and v
            ),
            what="backing off",
        )
        assert "missing API key" in retrying["status_reason"]
        failed = eventually(
            lambda: (v := api.get("/api/v1/agents/crasher").json())["status"] == "failed" and v,
            what="failed",
        )
        assert "failed to start 3 times" in failed["status_reason"]


def start_host(stack: Stack, name: str) -> subprocess.Popen[bytes]:
    env = {
        **stack.env,
        **stack.role_env("host"),
        "CORTEX_HOST_NAME": name,
    }
    log = (stack.root / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "cortex.host"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def test_a_dead_host_s_20_agents_run_again_elsewhere_within_the_default_bound(
    tmp_path: Path,
) -> None:
    """Default health settings: 2 s heartbeats, gone after 8 missed (16 s); bound 30 s."""
    stack = Stack(tmp_path / "heal", CORTEX_HOSTS="0").start()
    first = start_host(stack, "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        with stack.client() as api:
            eventually(
                lambda: any(
                    h["id"] == "first" and h["health"] == "healthy"
                    for h in api.get("/api/v1/hosts").json()
                ),
                what="first host",
            )
            for i in range(20):
                api.post(
                    "/api/v1/agents",
                    json={"name": f"c{i:02d}", "template": "counter", "deploy": True},
                )
            eventually(
                lambda: (
                    api.get("/api/v1/agents", params={"status": "running"}).json()["total"] == 20
                ),
                what="20 running",
                timeout=60,
            )
            for i in range(20):
                assert count(api, f"c{i:02d}", by=i + 1) == i + 1
            second = start_host(stack, "second")
            eventually(
                lambda: any(
                    h["id"] == "second" and h["health"] == "healthy"
                    for h in api.get("/api/v1/hosts").json()
                ),
                what="second",
            )

            first.kill()
            first.wait()
            killed_at = time.monotonic()

            def all_on_second() -> bool:
                items = api.get("/api/v1/instances", params={"status": "healthy"}).json()["items"]
                return sum(1 for i in items if i["host_id"] == "second") == 20

            eventually(all_on_second, timeout=40, what="20 replicas on the second host")
            eventually(
                lambda: (
                    api.get("/api/v1/agents", params={"status": "running"}).json()["total"] == 20
                ),
                what="20 running",
                timeout=10,
            )
            took = time.monotonic() - killed_at
            assert took < 30, f"took {took:.1f}s"
            # Nothing counted before the crash was lost.
            for i in range(20):
                assert count(api, f"c{i:02d}") == i + 2
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        stack.stop()
