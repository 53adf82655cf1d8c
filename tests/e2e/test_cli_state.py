"""`cortex state | pools | discover` against a running platform, as a user runs them: the
`cortex` executable in a subprocess, tables and text by default, `--json` for scripts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import until
from tests.support.stack import ADMIN_TOKEN, CORTEX, Stack

pytestmark = pytest.mark.e2e


def cortex(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Runs with a pipe as stdin (never a terminal: nothing may prompt) and without the test
    process's own CORTEX_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    done = subprocess.run(
        [CORTEX, *args],
        env=env | {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(stack: Stack, *args: str, stdin: str = "") -> str:
    done = cortex(stack, *args, stdin=stdin)
    assert done.returncode == 0, f"cortex {' '.join(args)}: {done.stderr}"
    return done.stdout


def data(stack: Stack, *args: str, stdin: str = "") -> Any:
    return json.loads(ok(stack, *args, "--json", stdin=stdin))


def fails(stack: Stack, *args: str, code: int = 1, stdin: str = "") -> str:
    """The stderr of a command that must fail with `code` (1: one `error:` line)."""
    done = cortex(stack, *args, stdin=stdin)
    assert done.returncode == code, f"cortex {' '.join(args)}: {done.returncode} {done.stderr}"
    if code == 1:
        assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


def row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first column is `first`."""
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{table}")


# --- state -------------------------------------------------------------------------------


def test_state_put_get_patch_and_history(stack: Stack, tmp_path: Path) -> None:
    ok(stack, "agents", "create", "notes", "--template", "echo")
    empty = cortex(stack, "state", "get", "notes")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "null\n", "version 0\n")

    assert ok(stack, "state", "put", "notes", '{"topic": "a", "n": 1}', "--if-match", "0") == (
        "version 1\n"
    )
    got = cortex(stack, "state", "get", "notes")
    assert json.loads(got.stdout) == {"topic": "a", "n": 1}
    assert got.stderr == "version 1\n"
    view = data(stack, "state", "get", "notes")
    assert (view["version"], view["value"]) == (1, {"topic": "a", "n": 1})

    patched = ok(
        stack, "state", "patch", "notes", '{"n": null, "more": {"k": 2}}', "--if-match", "1"
    )
    assert patched == "version 2\n"
    assert data(stack, "state", "get", "notes")["value"] == {"topic": "a", "more": {"k": 2}}

    document = tmp_path / "state.json"
    document.write_text(json.dumps({"items": [1, 2, 3]}))
    assert ok(stack, "state", "put", "notes", "--file", str(document)) == "version 3\n"
    written = data(stack, "state", "put", "notes", "-f", "-", stdin='["from", "stdin"]')
    assert written["applied"] is True
    assert (written["state"]["version"], written["state"]["value"]) == (4, ["from", "stdin"])
    assert ok(stack, "state", "put", "notes", "-", stdin="7") == "version 5\n"
    assert ok(stack, "state", "patch", "notes", "-", stdin='{"a": 1}') == "version 6\n"
    assert data(stack, "state", "get", "notes")["value"] == {"a": 1}  # a non-object is replaced

    history = data(stack, "state", "history", "notes")
    versions = [v["version"] for v in history["versions"]]
    assert versions[:6] == [6, 5, 4, 3, 2, 1]  # newest first (version 0, never written, may end it)
    assert history["versions"][4]["value"] == {"topic": "a", "more": {"k": 2}}
    table = ok(stack, "state", "history", "notes")
    assert row(table, "VERSION") == ["VERSION", "WRITER", "UPDATED", "VALUE"]
    assert row(table, "2")[1].startswith("api")
    assert row(table, "2")[3:] == ['{"topic":', '"a",', '"more":', '{"k":', "2}}"]
    assert row(table, "6")[3:] == ['{"a":', "1}"]


def test_a_stale_if_match_names_the_current_version(stack: Stack) -> None:
    ok(stack, "agents", "create", "guarded", "--template", "echo")
    ok(stack, "state", "put", "guarded", '{"v": 1}')
    ok(stack, "state", "put", "guarded", '{"v": 2}', "--if-match", "1")

    stale = fails(stack, "state", "put", "guarded", '{"v": 3}', "--if-match", "1")
    assert "at version 2, not 1" in stale
    assert "--if-match 2" in stale
    assert len(stale.splitlines()) == 1
    stale_patch = fails(stack, "state", "patch", "guarded", '{"v": 3}', "--if-match", "0")
    assert "at version 2" in stale_patch
    assert data(stack, "state", "get", "guarded")["value"] == {"v": 2}


def test_state_usage_and_errors(stack: Stack, tmp_path: Path) -> None:
    ok(stack, "agents", "create", "strict", "--template", "echo")
    fails(stack, "state", "put", "strict", code=2)  # neither JSON nor --file
    fails(stack, "state", "put", "strict", "1", "--file", "-", code=2)  # both
    fails(stack, "state", "put", "strict", "{nope", code=2)
    fails(stack, "state", "put", "strict", "NaN", code=2)
    fails(stack, "state", "patch", "strict", "[1, 2]", code=2)  # a merge patch is an object
    fails(stack, "state", "put", "strict", "1", "--if-match", "-1", code=2)

    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    assert f"{broken} is not JSON" in fails(stack, "state", "put", "strict", "-f", str(broken))
    assert "cannot read" in fails(stack, "state", "put", "strict", "-f", str(tmp_path / "none"))
    assert fails(stack, "state", "get", "nobody").startswith("error: 404")
    assert data(stack, "state", "get", "strict")["version"] == 0


# --- pools -------------------------------------------------------------------------------


def test_pools_create_list_get_and_delete(stack: Stack) -> None:
    out = ok(
        stack,
        "pools",
        "create",
        "research",
        "--description",
        "Reads papers",
        "--label",
        "team=blue",
    )
    assert out == "created pool research\n"
    assert fails(stack, "pools", "create", "research").startswith("error: 409")
    fails(stack, "pools", "create", "other", "--label", "noequals", code=2)
    assert fails(stack, "pools", "create", "Not_A_Name").startswith("error: 4")

    table = ok(stack, "pools", "list")
    assert row(table, "NAME") == ["NAME", "AGENTS", "LABELS", "AGE", "DESCRIPTION"]
    assert row(table, "research")[1:3] == ["0", "team=blue"]
    assert row(table, "research")[-2:] == ["Reads", "papers"]
    listed = {p["name"]: p for p in data(stack, "pools", "list")}
    assert listed["research"]["labels"] == {"team": "blue"}

    member = {"name": "reader", "template": "echo", "pool": "research"}
    ok(stack, "agents", "create", "-f", "-", stdin=json.dumps(member))
    pool = data(stack, "pools", "get", "research")
    assert (pool["name"], pool["description"], pool["agents"]) == ("research", "Reads papers", 1)
    shown = ok(stack, "pools", "get", "research")
    assert row(shown, "Agents:") == ["Agents:", "1"]
    assert row(shown, "Labels:") == ["Labels:", "team=blue"]
    assert row(shown, "reader")[1] == "created"

    refused = fails(stack, "pools", "delete", "research")
    assert refused.startswith("error: 409")
    assert "agent" in refused
    assert "research" in {p["name"] for p in data(stack, "pools", "list")}

    ok(stack, "agents", "delete", "reader", "--purge", "--yes")

    def deleted() -> tuple[bool, Any]:
        done = cortex(stack, "pools", "delete", "research")
        return done.returncode == 0, (done.stdout, done.stderr)

    out, _ = until(deleted, "the emptied pool deleted")
    assert out == "deleted pool research\n"
    assert fails(stack, "pools", "get", "research").startswith("error: 404")
    assert "research" not in {p["name"] for p in data(stack, "pools", "list")}
    assert fails(stack, "pools", "delete", "research").startswith("error: 404")


# --- discovery ---------------------------------------------------------------------------


def test_discover_lists_the_endpoints_and_picks_one(stack: Stack) -> None:
    ok(stack, "agents", "create", "finder", "--template", "echo")
    ok(stack, "agents", "deploy", "finder", "--replicas", "2")

    def two_healthy() -> tuple[bool, Any]:
        agent = data(stack, "agents", "get", "finder")
        healthy = {i["id"] for i in agent["instances"] if i["health"] == "healthy"}
        return len(healthy) == 2, healthy

    instances: set[str] = until(two_healthy, "finder with 2 healthy instances")

    found = data(stack, "discover", "finder")
    assert found["name"] == "finder"
    assert {e["instance_id"] for e in found["endpoints"]} == instances
    assert found["picked"] is None

    table = ok(stack, "discover", "finder")
    assert row(table, "Agent:")[1] == "finder"
    assert row(table, "Inbox:") == ["Inbox:", found["inbox"]]
    assert row(table, "INSTANCE") == ["INSTANCE", "HOST", "HEALTH", "INFLIGHT", "DIRECT"]
    for endpoint in found["endpoints"]:
        cells = row(table, endpoint["instance_id"])
        assert cells[1:3] == [endpoint["host_id"], "healthy"]
        assert cells[4] == endpoint["direct"]

    picked = ok(stack, "discover", "finder", "--pick", "round_robin")
    assert row(picked, "INSTANCE")[-1] == "PICKED"
    marked = [i for i in instances if row(picked, i)[-1] == "*"]
    assert len(marked) == 1
    assert row(picked, "Picked:")[1:] == [marked[0], "(round_robin)"]
    assert (
        data(stack, "discover", "finder", "--pick", "least_loaded")["picked"]["instance_id"]
        in instances
    )

    fails(stack, "discover", "finder", "--pick", "random", code=2)
    assert fails(stack, "discover", "nobody").startswith("error: 404")
