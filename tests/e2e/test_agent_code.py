"""Agent code runs inside the agent hosts: a template may only name code from where the
operator said agent code comes from, and whatever that code raises, `SystemExit` included,
fails its agent and never its host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.polling import eventually
from tests.support.stack import FAST_HEALTH, TEST_AGENT_MODULES, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Both standard-library modules raise SystemExit when imported.
    running = Stack(
        tmp_path_factory.mktemp("agent-code"),
        CORTEX_AGENT_PATH=str(REPO),  # where hosts import tests.support.sample_agents from
        CORTEX_AGENT_MODULES=f"{TEST_AGENT_MODULES},venv.__main__,unittest.__main__",
        CORTEX_HOSTS="2",
        **FAST_HEALTH,
    ).start()
    yield running
    running.stop()


def test_a_handler_from_anywhere_else_is_refused_at_registration(stack: Stack) -> None:
    with stack.client() as api:
        refused = api.post("/api/v1/templates", json={"name": "os", "handler": "os:system"})
        assert refused.status_code == 422
        (violation,) = refused.json()["errors"]
        assert violation["field"] == "$.handler"
        assert "CORTEX_AGENT_MODULES" in violation["message"]
        assert api.get("/api/v1/templates/os").status_code == 404


@pytest.mark.parametrize("module", ["venv.__main__", "unittest.__main__"])
def test_a_module_that_exits_on_import_fails_its_agent_and_every_host_stays_up(
    stack: Stack, module: str
) -> None:
    hosts = {name: stack.pid_of(name) for name in ("host-1", "host-2")}
    name = module.partition(".")[0]
    with stack.client() as api:
        registered = api.post(
            "/api/v1/templates", json={"name": f"{name}-main", "handler": f"{module}:A"}
        )
        assert registered.status_code == 201, registered.text
        created = api.post(
            "/api/v1/agents",
            json={"name": f"{name}-exit", "template": f"{name}-main", "deploy": True},
        )
        assert created.status_code == 201, created.text
        agent = eventually(
            lambda: (
                view
                if (view := api.get(f"/api/v1/agents/{created.json()['id']}").json())["status"]
                == "failed"
                else None
            ),
            timeout=60,
            what=f"the agent of {module} failed",
        )
        assert "cannot import" in agent["status_reason"], agent
        assert "SystemExit" in agent["status_reason"], agent
        assert {name: stack.pid_of(name) for name in hosts} == hosts
        assert "host-1 exited" not in stack.output
        assert "host-2 exited" not in stack.output
        assert [h["health"] for h in api.get("/api/v1/hosts").json()] == ["healthy"] * 2


def test_an_agent_that_exits_while_starting_or_handling_fails_alone(stack: Stack) -> None:
    hosts = {name: stack.pid_of(name) for name in ("host-1", "host-2")}
    with stack.client() as api:
        for name in ("ExitsOnStart", "ExitsOnMessage"):
            api.post(
                "/api/v1/templates",
                json={"name": name.lower(), "handler": f"tests.support.sample_agents:{name}"},
            ).raise_for_status()
        starts = api.post(
            "/api/v1/agents", json={"name": "exits", "template": "exitsonstart", "deploy": True}
        ).json()
        handles = api.post(
            "/api/v1/agents",
            json={"name": "exits-later", "template": "exitsonmessage", "deploy": True},
        ).json()
        failed = eventually(
            lambda: (
                view
                if (view := api.get(f"/api/v1/agents/{starts['id']}").json())["status"] == "failed"
                else None
            ),
            timeout=60,
            what="the agent whose start exits failed",
        )
        assert "on_start failed: SystemExit: 3" in failed["status_reason"]
        eventually(
            lambda: api.get(f"/api/v1/agents/{handles['id']}").json()["status"] == "running",
            what="the agent that exits on messages running",
        )
        reply = api.post(
            f"/api/v1/agents/{handles['id']}/messages",
            params={"wait": 10},
            json={"payload": {"hello": 1}},
        )
        assert reply.json()["status"] == "error", reply.text
        assert "SystemExit: 4" in reply.text
        assert {name: stack.pid_of(name) for name in hosts} == hosts
