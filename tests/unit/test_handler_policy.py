"""Where a template's handler may come from (cortex.kernel.handlers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex.kernel.handlers import refusal


@pytest.fixture
def agent_path(tmp_path: Path) -> str:
    (tmp_path / "greeter.py").write_text("")
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "worker.py").write_text("")
    return f"/nowhere:{tmp_path}"


@pytest.mark.parametrize(
    "handler",
    [
        "cortex.sdk.builtin:Echo",
        "greeter:Greeter",
        "pipeline.worker:Worker",
        "pipeline:Package",
        "acme.agents:Clerk",
        "acme.agents.billing:Clerk",
        "other.tools:Tool",
    ],
)
def test_built_ins_modules_on_the_agent_path_and_allowed_prefixes_may_be_named(
    handler: str, agent_path: str
) -> None:
    assert refusal(handler, agent_path, "acme.agents, other") is None


@pytest.mark.parametrize(
    "handler",
    [
        "venv.__main__:A",
        "unittest.__main__:A",
        "os:system",
        "acme.agentsmith:Clerk",  # a prefix is a whole module name, not the start of one
        "pipeline.missing:Worker",
        "../greeter:Greeter",
        "cortex.sdk:Agent",
    ],
)
def test_anything_else_is_refused_with_the_rule(handler: str, agent_path: str) -> None:
    why = refusal(handler, agent_path, "acme.agents")
    assert why is not None
    assert "CORTEX_AGENT_PATH" in why
    assert "CORTEX_AGENT_MODULES" in why
