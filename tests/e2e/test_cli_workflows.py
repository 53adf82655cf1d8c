"""`cortex workflows | executions | run` against a running platform, as a user runs them: the
`cortex` executable in a subprocess, tables by default, `--json` for scripts, live following."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.polling import until
from tests.support.ports import free_port
from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

DEADLINE = 30.0

FAN: dict[str, Any] = {
    "name": "cli-fan",
    "description": "An agent, a group of an agent and a transform, a join.",
    "params": {
        "type": "object",
        "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["text", "n"],
    },
    "steps": [
        {"id": "first", "type": "agent", "agent": "cli-echo", "input": {"text": "${params.text}"}},
        {
            "parallel": [
                {
                    "id": "left",
                    "type": "agent",
                    "agent": "cli-echo",
                    "input": {"side": "left", "prev": "${steps.first.output}"},
                    "retry": {"attempts": 2, "backoff": "100ms"},
                },
                {"id": "right", "type": "transform", "expression": "params.n"},
            ]
        },
        {
            "id": "join",
            "type": "transform",
            "output": {
                "prev": "${steps.left.output.prev.text}",
                "n": "${steps.right.output}",
                "line": "n=${params.n} text=${params.text}",
            },
        },
    ],
}


def cortex_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return env | {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}


def cortex(stack: Stack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs with a pipe as stdout (never a terminal: `--follow` prints one line per event)."""
    done = subprocess.run(
        [CORTEX, *args],
        env=cortex_env(stack),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(stack: Stack, *args: str) -> str:
    done = cortex(stack, *args)
    assert done.returncode == 0, f"cortex {' '.join(args)}: {done.stderr}"
    return done.stdout


def data(stack: Stack, *args: str) -> Any:
    return json.loads(ok(stack, *args, "--json"))


def failed(stack: Stack, *args: str, code: int = 1) -> str:
    """The one `error:` line of a command that must fail with `code`."""
    done = cortex(stack, *args)
    assert done.returncode == code, f"cortex {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stderr


def row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first column is `first`."""
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{table}")


def finished(stack: Stack, execution_id: str) -> dict[str, Any]:
    def check() -> tuple[bool, Any]:
        view = data(stack, "executions", "get", execution_id)
        return view["status"] != "running", view

    return dict(until(check, f"execution {execution_id} finished"))


def template_file(tmp: Path, spec: dict[str, Any], suffix: str = ".yaml") -> str:
    path = tmp / f"{spec['name']}{suffix}"
    path.write_text(yaml.safe_dump(spec) if suffix == ".yaml" else json.dumps(spec))
    return str(path)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its http steps call servers on loopback, which they may not reach by default.
    running = Stack(
        tmp_path_factory.mktemp("cli-workflows"), CORTEX_HTTP_STEP_ALLOW="127.0.0.1", **FAST_HEALTH
    ).start()
    ok(running, "agents", "create", "cli-echo", "--template", "echo", "--deploy")
    until(
        lambda: (
            (a := data(running, "agents", "get", "cli-echo"))["status"] == "running",
            a["status"],
        ),
        "agent cli-echo running",
    )
    ok(running, "workflows", "templates", "register", "-f", template_file(running.root, FAN))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port that accepts connections and never answers: an http step to it runs until its
    timeout or until it is cancelled."""
    with socket.create_server(("127.0.0.1", free_port())) as server:
        yield int(server.getsockname()[1])


def test_templates_register_list_and_get(stack: Stack, tmp_path: Path) -> None:
    spec = {**FAN, "name": "cli-json", "version": "2"}
    source = template_file(tmp_path, spec, ".json")
    assert ok(stack, "workflows", "templates", "register", "-f", source).strip() == (
        "registered workflow template cli-json@2"
    )
    assert ok(stack, "workflows", "templates", "register", "-f", source).strip() == (
        "workflow template cli-json@2 is registered already with the same definition: unchanged"
    )

    listed = ok(stack, "workflows", "templates", "list")
    assert row(listed, "cli-json")[:3] == ["cli-json", "2", "2"]
    assert row(listed, "cli-fan")[:3] == ["cli-fan", "1", "1"]

    shown = ok(stack, "workflows", "templates", "get", "cli-fan")
    assert "Name:        cli-fan" in shown
    assert row(shown, "first")[:4] == ["first", "agent", "agent", "cli-echo"]
    assert row(shown, "left")[:3] == ["left", "parallel-1", "agent"]
    assert "2 attempts, 100ms" in " ".join(row(shown, "left"))
    assert row(shown, "right")[:4] == ["right", "parallel-1", "transform", "params.n"]
    as_json = data(stack, "workflows", "templates", "get", "cli-fan")
    assert [v["version"] for v in as_json["versions"]] == ["1"]

    changed = {**spec, "description": "other"}
    error = failed(
        stack, "workflows", "templates", "register", "-f", template_file(tmp_path, changed)
    )
    assert error.startswith("error: 409 Conflict")

    broken = {
        "name": "cli-broken",
        "steps": [
            {"id": "a", "type": "agent", "input": "${steps.b.output}"},
            {"id": "b", "type": "http", "url": "ftp://x"},
        ],
    }
    error = failed(
        stack, "workflows", "templates", "register", "-f", template_file(tmp_path, broken)
    )
    assert error.startswith("error: 422 Unprocessable Entity")
    assert "$.steps[0].agent" in error
    assert "$.steps[1].url" in error
    assert "step 'b' comes later" in error
    assert len(error.strip().splitlines()) >= 3  # one line per problem

    (tmp_path / "list.yaml").write_text("- not a template\n")
    error = failed(stack, "workflows", "templates", "register", "-f", str(tmp_path / "list.yaml"))
    assert "holds a list; it should hold a workflow template" in error
    assert failed(stack, "workflows", "templates", "get", "nope").startswith("error: 404")


def test_create_list_and_get_workflows(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("text: from the file\nn: 1\n")
    created = ok(
        stack,
        "workflows",
        "create",
        "cli-fan",
        "--params-file",
        str(tmp_path / "params.yaml"),
        "--param",
        "n=3",  # over the file's, and a number: JSON when it parses
        "--name",
        "nightly",
    )
    workflow_id = created.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", workflow_id), created

    view = data(stack, "workflows", "get", workflow_id)
    assert view["params"] == {"text": "from the file", "n": 3}
    assert (view["name"], view["template"], view["template_version"]) == ("nightly", "cli-fan", "1")
    shown = ok(stack, "workflows", "get", workflow_id)
    assert "Name:           nightly" in shown
    assert 'Params:         {"text": "from the file", "n": 3}' in shown
    assert "Executions:     0" in shown

    listed = ok(stack, "workflows", "list", "--template", "cli-fan")
    assert row(listed, workflow_id)[1:4] == ["nightly", "cli-fan@1", "0"]
    assert workflow_id in {w["id"] for w in data(stack, "workflows", "list")["items"]}
    assert cortex(stack, "workflows", "list", "--template", "nope").stdout == ""

    # A value that parses as JSON but whose parameter is a string is the text as typed.
    typed = data(stack, "workflows", "create", "cli-fan", "--param", "text=5", "--param", "n=5")
    assert typed["params"] == {"text": "5", "n": 5}
    typed = data(
        stack, "workflows", "create", "cli-fan@1", "--param", "text=true", "--param", "n=1"
    )
    assert typed["params"] == {"text": "true", "n": 1}
    quoted = data(stack, "workflows", "create", "cli-fan", "--param", 'text="7"', "--param", "n=1")
    assert quoted["params"]["text"] == "7"

    error = failed(stack, "workflows", "create", "cli-fan", "--param", "text=x", "--param", "n=x")
    assert error.startswith("error: 422 Unprocessable Entity")
    assert "$.params.n" in error
    assert "expected KEY=VALUE" in failed(
        stack, "workflows", "create", "cli-fan", "--param", "n", code=2
    )
    assert failed(stack, "workflows", "create", "nope").startswith("error: 404")
    assert failed(stack, "workflows", "get", "nope").startswith("error: 404")


def test_execute_and_the_timeline_of_executions_get(stack: Stack) -> None:
    text = " ".join(["word"] * 30)  # too long for a table cell
    workflow_id = ok(
        stack, "workflows", "create", "cli-fan", "--param", f"text={text}", "--param", "n=1"
    ).strip()
    done = cortex(stack, "workflows", "execute", workflow_id, "--param", "n=7")
    assert done.returncode == 0, done.stderr
    execution_id = done.stdout.strip()
    assert f"cortex executions follow {execution_id}" in done.stderr

    view = finished(stack, execution_id)
    assert view["status"] == "succeeded", view
    assert view["params"] == {"text": text, "n": 7}  # the execution's over the workflow's
    assert view["steps"][-1]["output"] == {"prev": text, "n": 7, "line": f"n=7 text={text}"}

    shown = ok(stack, "executions", "get", execution_id)
    assert f"ID:       {execution_id}" in shown
    assert "Status:   succeeded" in shown
    assert "Error:" not in shown
    header = next(line for line in shown.splitlines() if line.startswith("STEP"))
    assert header.split() == [
        "STEP", "GROUP", "STATUS", "ATTEMPTS", "STARTED", "DURATION", "OUTPUT/ERROR"
    ]  # fmt: skip
    first = row(shown, "first")
    assert first[1:3] == ["succeeded", "1"]  # no group: the cell is empty
    assert re.fullmatch(r"\+\d+\.\d+s", first[3])
    assert first[4].endswith("s")
    assert first[5] == '{"text":'
    assert first[-1].endswith("…")  # the output is cut to one short line
    assert row(shown, "left")[1:4] == ["parallel-1", "succeeded", "1"]
    assert row(shown, "right")[1:4] == ["parallel-1", "succeeded", "1"]
    assert row(shown, "right")[-1] == "7"

    listed = ok(stack, "executions", "list", "--workflow", workflow_id)
    assert row(listed, execution_id)[1:5] == [workflow_id, "cli-fan@1", "succeeded", "4/4"]
    assert execution_id in {
        e["id"] for e in data(stack, "executions", "list", "--status", "succeeded")["items"]
    }
    assert execution_id not in ok(stack, "executions", "list", "--status", "failed")
    assert data(stack, "workflows", "get", workflow_id)["last_execution"] == execution_id
    assert failed(stack, "executions", "get", "nope").startswith("error: 404")
    assert failed(stack, "executions", "list", "--status", "done", code=2)


def test_run_follow_shows_the_steps_and_the_result(stack: Stack) -> None:
    done = cortex(
        stack, "run", "cli-fan", "--param", "text=hello world", "--param", "n=2", "--follow"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"execution \S+ of cli-fan@1: (running|succeeded)", lines[0])
    for step in ("first", "left", "right", "join"):
        assert re.search(rf"^\s+\+\S+\s+{step}\s+succeeded\s", done.stdout, re.M), done.stdout
    execution_id = lines[0].split()[1]
    assert re.search(rf"^execution {execution_id} succeeded in \S+s$", done.stdout, re.M)
    _, _, after = done.stdout.partition("result of step join:\n")
    assert json.loads(after) == {"prev": "hello world", "n": 2, "line": "n=2 text=hello world"}

    # Without --follow: the id alone on stdout, for scripts.
    started = cortex(stack, "run", "cli-fan", "--param", "text=x", "--param", "n=1")
    assert started.returncode == 0, started.stderr
    assert finished(stack, started.stdout.strip())["status"] == "succeeded"

    # Following an execution that has finished shows it and its outcome all the same.
    again = cortex(stack, "executions", "follow", execution_id)
    assert again.returncode == 0, again.stderr
    assert re.search(r"^\s+\+\S+\s+join\s+succeeded\s", again.stdout, re.M)

    workflow_id = data(stack, "executions", "get", execution_id)["workflow_id"]
    for _ in range(3):
        followed = cortex(
            stack, "workflows", "execute", workflow_id, "--param", "n=5", "--param", "text=9",
            "--follow",
        )  # fmt: skip
        assert followed.returncode == 0, followed.stderr
        assert '"n": 5' in followed.stdout
        assert '"prev": "9"' in followed.stdout  # text=9: its parameter is a string
        for step in ("first", "left", "right", "join"):  # each step's outcome once, not again
            done_lines = re.findall(rf"^\s+\+\S+\s+{step}\s+succeeded\s", followed.stdout, re.M)
            assert len(done_lines) == 1, followed.stdout


def test_run_follow_fails_with_the_step_s_error(stack: Stack, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    spec: dict[str, Any] = {
        "name": "cli-down",
        "params": {"type": "object", "properties": {"port": {"type": "integer"}}},
        "steps": [
            {"id": "prepare", "type": "transform", "output": {"port": "${params.port}"}},
            {
                "id": "call",
                "type": "http",
                "url": "http://127.0.0.1:${steps.prepare.output.port}/health",
                "retry": {"attempts": 1},
            },
            {"id": "after", "type": "transform", "expression": "steps.call.output.status"},
        ],
    }
    ok(stack, "workflows", "templates", "register", "-f", template_file(tmp_path, spec))
    done = cortex(stack, "run", "cli-down", "--param", f"port={closed}", "--follow")
    assert done.returncode == 1, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()
    assert len(error) == 1, error
    assert error[0].startswith("error: step call failed")
    assert f"http://127.0.0.1:{closed}/health" in error[0]
    assert re.search(r"^execution \S+ failed in \S+$", done.stdout, re.M)
    assert re.search(r"^\s+\+\S+\s+call\s+failed", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+after\s+skipped$", done.stdout, re.M), done.stdout
    assert "result of step" not in done.stdout

    execution_id = done.stdout.split()[1]
    shown = ok(stack, "executions", "get", execution_id)
    assert "Status:   failed" in shown
    assert re.search(r"^Error:\s+step call failed", shown, re.M)
    assert row(shown, "call")[1:3] == ["failed", "1"]
    assert row(shown, "after")[1:] == ["skipped"]

    # on_error: continue: the failed step leaves a null output and the workflow goes on.
    lenient = {**spec, "name": "cli-lenient"}
    lenient["steps"] = [*spec["steps"][:1], {**spec["steps"][1], "on_error": "continue"}]
    lenient["steps"].append({"id": "after", "type": "transform", "output": "${steps.call.output}"})
    ok(stack, "workflows", "templates", "register", "-f", template_file(tmp_path, lenient))
    done = cortex(stack, "run", "cli-lenient", "--param", f"port={closed}", "--follow")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^\s+\+\S+\s+call\s+failed", done.stdout, re.M), done.stdout
    assert done.stdout.rstrip().endswith("result of step after:\nnull")


def test_cancel_ends_a_running_execution_and_its_follower(
    stack: Stack, tmp_path: Path, blackhole: int
) -> None:
    spec: dict[str, Any] = {
        "name": "cli-stuck",
        "steps": [
            {
                "id": "wait",
                "type": "http",
                "url": f"http://127.0.0.1:{blackhole}/never",
                "timeout": "60s",
            },
            {"id": "after", "type": "transform", "output": "done"},
        ],
    }
    ok(stack, "workflows", "templates", "register", "-f", template_file(tmp_path, spec))
    execution_id = ok(stack, "run", "cli-stuck").strip()
    follower = subprocess.Popen(
        [CORTEX, "executions", "follow", execution_id],
        env=cortex_env(stack),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until(
            lambda: (
                (s := data(stack, "executions", "get", execution_id)["steps"][0]["status"])
                == "running",
                s,
            ),
            "step wait running",
        )
        assert ok(stack, "executions", "cancel", execution_id).strip() == (
            f"cancelled execution {execution_id}: status cancelled"
        )
        out, err = follower.communicate(timeout=DEADLINE)
    finally:
        follower.kill()
    assert follower.returncode == 1, out + err
    assert err.strip() == f"error: execution {execution_id} was cancelled by api:admin"
    assert re.search(rf"^execution {execution_id} cancelled in \S+$", out, re.M), out
    assert re.search(r"^\s+\+\S+\s+wait\s+cancelled$", out, re.M), out
    assert re.search(r"^\s+after\s+skipped$", out, re.M), out

    shown = ok(stack, "executions", "get", execution_id)
    assert "Status:   cancelled" in shown
    assert row(shown, "wait")[1] == "cancelled"
    assert row(shown, "after")[1:] == ["skipped"]
    # Finished: it cannot be cancelled again, and following it ends at once with its outcome.
    assert failed(stack, "executions", "cancel", execution_id).startswith("error: 409 Conflict")
    again = cortex(stack, "executions", "follow", execution_id)
    assert again.returncode == 1
    assert "was cancelled" in again.stderr


def test_usage_errors_exit_2(stack: Stack) -> None:
    assert "Missing argument" in failed(stack, "run", code=2)
    assert "expected KEY=VALUE" in failed(stack, "run", "cli-fan", "--param", "text", code=2)
    assert "exclude each other" in failed(
        stack, "workflows", "execute", "x", "--follow", "--json", code=2
    )
    assert "Missing option" in failed(stack, "workflows", "templates", "register", code=2)
    error = failed(stack, "run", "nope", "--follow")
    assert error.startswith("error: 404 Not Found")
