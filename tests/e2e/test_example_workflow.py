"""The workflow examples run exactly as docs/workflows.md tells a user to run them: the commands
are read from the document itself, so that the document cannot drift from what works."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_workflows import FANOUT
from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "workflows.md").read_text()
UP = "make up"


def section(title: str) -> str:
    """The text of the `## title` section."""
    start = DOC.index(f"\n## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}[^\n]*\n(.*?)```", text, flags=re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """The `cortex` command lines of a shell block, as argument lists (comments dropped)."""
    found = []
    for line in block.splitlines():
        if line.startswith("cortex "):
            found.append(["cortex", *shlex.split(line, comments=True)[1:]])
    return found


@pytest.fixture(scope="module")
def review_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("review"),
        CORTEX_AGENT_PATH=str(REPO / "examples" / "agents"),
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


def cortex(stack: Stack, args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}
    done = subprocess.run(
        [CORTEX, *args[1:]], env=env, capture_output=True, text=True, cwd=cwd, timeout=90
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def result_of(stdout: str) -> object:
    """The result `cortex run --follow` prints after `result of step <id>:`."""
    _, _, after = stdout.partition("\nresult of step ")
    assert after, stdout
    return json.loads(after.split("\n", 1)[1])


def test_the_documented_review_walkthrough(review_stack: Stack) -> None:
    try_it = section("Try it")
    # `make up` sets CORTEX_AGENT_PATH to examples/agents, as the stack above does.
    assert UP in blocks(try_it, "sh")[0]
    steps = commands(blocks(try_it, "sh")[0])
    assert steps[-1][:3] == ["cortex", "run", "review"]
    assert "--follow" in steps[-1]
    for args in steps[:-1]:
        done = cortex(review_stack, args)
        assert done.returncode == 0, f"{shlex.join(args)}: {done.stderr}"

    done = cortex(review_stack, steps[-1])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"execution \S+ of review@1: (running|succeeded)", lines[0]), lines[0]
    for step in ("draft", "clarity", "brevity", "tone", "verdict"):
        assert re.search(rf"^\s+\+\S+\s+{step}\s+succeeded\s+\{{", done.stdout, re.M), step
    assert re.search(r"^execution \S+ succeeded in \S+$", done.stdout, re.M)
    verdict = result_of(done.stdout)
    assert verdict == {
        "text": "The release is ready. Maybe we SHOULD wait!",
        "reviews": [
            {"aspect": "clarity", "score": 9, "comment": "sentences average 4 words"},
            {"aspect": "brevity", "score": 9, "comment": "8 words"},
            {"aspect": "tone", "score": 4, "comment": "2 shouted, 1 hedged"},
        ],
        "summary": "clarity 9/10, brevity 9/10, tone 4/10",
    }

    # The look back at it that the document shows next.
    listed = cortex(review_stack, ["cortex", "executions", "list", "--status", "succeeded"])
    assert listed.returncode == 0, listed.stderr
    execution_id = lines[0].split()[1]
    assert execution_id in listed.stdout
    timeline = cortex(review_stack, ["cortex", "executions", "get", execution_id])
    assert timeline.returncode == 0, timeline.stderr
    assert re.search(r"^tone\s+parallel-1\s+succeeded\s+1\s", timeline.stdout, re.M)


def test_a_stopped_reviewer_fails_the_run_as_documented(review_stack: Stack) -> None:
    """The last paragraph of "Try it": delete a reviewer, run again, see it fail."""
    deleted = cortex(review_stack, ["cortex", "agents", "delete", "tone-reviewer", "--grace", "1"])
    assert deleted.returncode == 0, deleted.stderr
    done = cortex(review_stack, ["cortex", "run", "review", "--param", "text=hi", "--follow"])
    assert done.returncode == 1, done.stdout + done.stderr
    error = done.stderr.strip()
    assert error.startswith("error: step tone failed after 3 attempts: agent tone-reviewer is")
    assert "not running" in error
    assert re.search(r"^\s+verdict\s+skipped$", done.stdout, re.M), done.stdout
    assert "agent tone-reviewer is terminat" in section("Try it")


def test_the_fanout_template_of_the_document_runs(review_stack: Stack, tmp_path: Path) -> None:
    first = section("A first template")
    template = json.loads(blocks(first, "json")[0])
    assert template == FANOUT  # verbatim: the issue's template, as the e2e suite runs it
    (tmp_path / "fanout.json").write_text(blocks(first, "json")[0])
    steps = commands(blocks(first, "sh")[0])
    for args in steps[:-1]:
        done = cortex(review_stack, args, cwd=tmp_path)
        assert done.returncode == 0, f"{shlex.join(args)}: {done.stderr}"
    done = cortex(review_stack, steps[-1], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    execution_id = done.stdout.split()[1]
    view = json.loads(
        cortex(review_stack, ["cortex", "executions", "get", execution_id, "--json"]).stdout
    )
    outputs = {s["id"]: s["output"] for s in view["steps"]}
    assert outputs["a"] == {"branch": "a", "prev": {"text": "hi"}}
    assert {s["parent"] for s in view["steps"][1:]} == {"parallel-1"}
