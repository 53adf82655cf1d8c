"""The platform with its `kubernetes` runtime driver on, as a user meets it without a cluster
at hand: `cortex agents create --dry-run -o yaml` shows the objects an agent would be made of,
and an agent deployed while the API server cannot be reached waits, saying why, rather than
failing. (What a live cluster does is the driver contract suite's kubernetes leg.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.e2e.test_cli_agents import cortex, data, ok
from tests.support.kubeconfig import kubeconfig
from tests.support.polling import until
from tests.support.ports import free_port
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "kubernetes" / "summarizer-template.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    config = kubeconfig(root / "kubeconfig", f"https://127.0.0.1:{free_port()}")
    running = Stack(
        root / "platform",
        CORTEX_KUBERNETES_NAMESPACE="agents",
        CORTEX_KUBERNETES_CONFIG=str(config),
    ).start()
    ok(running, "templates", "register", "-f", str(TEMPLATE))
    yield running
    running.stop()


def test_a_dry_run_prints_the_objects_a_kubernetes_agent_would_be_made_of(stack: Stack) -> None:
    shown = ok(
        stack,
        "agents", "create", "digest-eu", "--template", "summarizer", "--replicas", "2",
        "--config", "api_key=sk-live-42", "--config", "model=small", "--label", "team=news",
        "--dry-run", "-o", "yaml",
    )  # fmt: skip
    assert "sk-live-42" not in shown
    objects: list[dict[str, Any]] = list(yaml.safe_load_all(shown))
    assert [o["kind"] for o in objects] == ["ConfigMap", "ConfigMap", "Secret", "Pod"]
    for o in objects:
        assert o["metadata"]["namespace"] == "agents"
        assert o["metadata"]["labels"]["cortex.codevald.dev/agent"] == "digest-eu"
        kubernetes_validate.validate(o, "1.33.0", strict=True)
    pod = objects[-1]
    [container] = pod["spec"]["containers"]
    assert container["image"] == "registry.example/summarizer:1.4"
    assert container["resources"]["limits"] == {"memory": "1Gi"}
    assert json.loads(objects[2]["stringData"]["values.json"]) == [[["api_key"], "***"]]
    assert "digest-eu" not in {a["name"] for a in data(stack, "agents", "list")["items"]}


def test_without_a_reachable_api_server_an_agent_waits_and_says_why(stack: Stack) -> None:
    ok(
        stack, "agents", "create", "waiting-eu", "--template", "summarizer",
        "--config", "api_key=sk-1", "--deploy",
    )  # fmt: skip

    def check() -> tuple[bool, Any]:
        agent = data(stack, "agents", "get", "waiting-eu")
        return "could not be reached" in (agent["status_reason"] or ""), agent

    agent = until(check, "the API server's absence as the agent's status reason")
    assert agent["status"] == "deploying"
    assert "list pods in namespace agents" in agent["status_reason"]
    # It keeps waiting rather than failing: nothing was the agent's fault.
    assert data(stack, "agents", "get", "waiting-eu")["status"] == "deploying"


def test_a_kubernetes_template_without_its_agent_class_is_refused(
    stack: Stack, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    template = yaml.safe_load(TEMPLATE.read_text())
    bad.write_text(json.dumps({**template, "name": "no-class", "handler": None}))
    done = cortex(stack, "templates", "register", "-f", str(bad))
    assert done.returncode != 0
    assert "$.handler" in done.stderr
    assert "names its agent class (in its image)" in done.stderr
