"""`cortex templates | agents | hosts | instances` against a running platform, as a user runs
them: the `cortex` executable in a subprocess, tables by default, `--json` for scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import until
from tests.support.stack import ADMIN_TOKEN, CORTEX, Stack

pytestmark = pytest.mark.e2e


def cortex_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return env | {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}


def cortex(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Runs with a pipe as stdin (never a terminal: nothing may prompt) and without the test
    process's own CORTEX_* settings."""
    done = subprocess.run(
        [CORTEX, *args],
        env=cortex_env(stack),
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


def data(stack: Stack, *args: str) -> Any:
    return json.loads(ok(stack, *args, "--json"))


def row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first column is `first`."""
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{table}")


def names(stack: Stack, *args: str) -> set[str]:
    return {a["name"] for a in data(stack, "agents", "list", *args)["items"]}


def healthy(agent: dict[str, Any]) -> int:
    return sum(1 for i in agent["instances"] if i["health"] == "healthy")


def deployed(stack: Stack, name: str, template: str, replicas: int) -> dict[str, Any]:
    """An agent created, deployed and seen running with every replica healthy."""
    ok(stack, "agents", "create", name, "--template", template, "--replicas", str(replicas))
    assert "deploying agent" in ok(stack, "agents", "deploy", name)

    def check() -> tuple[bool, Any]:
        agent = data(stack, "agents", "get", name)
        return agent["status"] == "running" and healthy(agent) == replicas, agent

    agent: dict[str, Any] = until(check, f"{name} running with {replicas} healthy instances")
    return agent


# --- templates ---------------------------------------------------------------------------


def test_templates_list_shows_the_builtin_templates(stack: Stack) -> None:
    table = ok(stack, "templates", "list")
    assert row(table, "NAME")[:4] == ["NAME", "LATEST", "VERSIONS", "RUNTIME"]
    assert row(table, "echo")[1:4] == ["1", "1", "host"]
    assert row(table, "counter")[3] == "host"
    assert {"echo", "counter"} <= {t["name"] for t in data(stack, "templates", "list")}


def test_a_template_registered_from_yaml_shows_its_versions(stack: Stack, tmp_path: Path) -> None:
    spec = tmp_path / "hello.yaml"
    spec.write_text(
        "name: hello\n"
        'version: "1"\n'
        "description: Replies with what it got\n"
        "handler: cortex.sdk.builtin:Echo\n"
        "config_schema:\n"
        "  type: object\n"
        "  properties: {greeting: {type: string}}\n"
        "default_config: {greeting: hello}\n"
    )
    assert "registered template hello@1" in ok(stack, "templates", "register", "-f", str(spec))
    assert ok(stack, "templates", "register", "-f", str(spec)) == (
        "template hello@1 is registered already with the same definition: unchanged\n"
    )
    # Version 2 as JSON on stdin: `-f -` takes either format.
    second = {"name": "hello", "version": "2", "handler": "cortex.sdk.builtin:Echo"}
    out = ok(stack, "templates", "register", "-f", "-", stdin=json.dumps(second))
    assert "registered template hello@2" in out

    table = ok(stack, "templates", "get", "hello")
    assert row(table, "Latest:") == ["Latest:", "2"]
    assert row(table, "1")[1:3] == ["host", "cortex.sdk.builtin:Echo"]
    assert row(table, "2")[1] == "host"
    versions = data(stack, "templates", "get", "hello")["versions"]
    assert [v["version"] for v in versions] == ["1", "2"]
    assert versions[0]["default_config"] == {"greeting": "hello"}

    changed = spec.read_text().replace("Replies with", "Echoes")
    refused = cortex(stack, "templates", "register", "-f", "-", stdin=changed)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: 409")


def test_a_file_that_is_not_yaml_is_named_with_its_line(stack: Stack, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [echo\n")
    done = cortex(stack, "templates", "register", "-f", str(broken))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {broken} is neither YAML nor JSON")
    assert "line 2" in done.stderr


# --- creating and listing ----------------------------------------------------------------


def test_create_from_a_file_and_a_dry_run_from_flags(stack: Stack, tmp_path: Path) -> None:
    spec = tmp_path / "agent.yaml"
    spec.write_text(
        "name: tally\ntemplate: counter\nreplicas: 1\nconfig: {start: 5}\nlabels: {team: blue}\n"
    )
    out = ok(stack, "agents", "create", "-f", str(spec), "--replicas", "3")  # flags win
    assert "created agent tally from counter@2 with 3 replica(s)" in out
    assert row(ok(stack, "agents", "list"), "tally")[1:4] == ["created", "0/3", "counter@2"]
    agent = data(stack, "agents", "get", "tally")
    assert agent["config"] == {"start": 5}
    assert agent["labels"] == {"team": "blue"}

    out = ok(
        stack, "agents", "create", "ghost", "-t", "counter", "--config", "start=2", "--dry-run"
    )
    assert "dry run" in out
    assert '{"start": 2}' in out
    assert "ghost" not in names(stack)
    assert "ghost" not in ok(stack, "agents", "list")


def test_config_values_are_json_when_they_parse(stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model: small\nlimits: {tokens: 100}\n")
    agent = data(
        stack,
        "agents",
        "create",
        "typed",
        "-t",
        "echo",
        "--config-file",
        str(config),
        "--config",
        "n=3",
        "--config",
        "on=true",
        "--config",
        'extra={"a": [1]}',
        "--config",
        "model=large-2",
        "--dry-run",
    )
    assert agent["config"] == {
        "model": "large-2",
        "limits": {"tokens": 100},
        "n": 3,
        "on": True,
        "extra": {"a": [1]},
    }


def test_list_filters_by_status_template_and_label(stack: Stack) -> None:
    for name, template, team in [
        ("lf-a", "echo", "red"),
        ("lf-b", "echo", "green"),
        ("lf-c", "counter", "red"),
    ]:
        ok(stack, "agents", "create", name, "-t", template, "--label", f"team={team}")
    ok(stack, "agents", "create", "lf-d", "-t", "echo", "--label", "team=red", "--label", "x=1")

    assert names(stack, "--label", "team=red") >= {"lf-a", "lf-c", "lf-d"}
    assert "lf-b" not in names(stack, "--label", "team=red")
    assert names(stack, "--label", "team=red", "--label", "x=1") == {"lf-d"}
    assert {"lf-a", "lf-b", "lf-d"} <= names(stack, "--template", "echo")
    assert "lf-c" not in names(stack, "--template", "echo")
    assert "lf-a" in names(stack, "--status", "created")
    assert "lf-a" not in names(stack, "--status", "running")

    page = data(stack, "agents", "list", "--label", "team=red", "--limit", "1")
    assert len(page["items"]) == 1
    assert page["total"] == 3
    assert page["next"]
    first = cortex(stack, "agents", "list", "--label", "team=red", "--limit", "1")
    assert "showing 1 of 3" in first.stderr
    every = ok(stack, "agents", "list", "--label", "team=red", "--limit", "1", "--all")
    assert [row(every, n)[0] for n in ("lf-a", "lf-c", "lf-d")] == ["lf-a", "lf-c", "lf-d"]

    table = ok(stack, "agents", "list", "--template", "counter")
    assert row(table, "NAME") == ["NAME", "STATUS", "READY", "TEMPLATE", "AGE", "ID"]


def test_a_bad_config_prints_the_field_path_and_exits_1(stack: Stack) -> None:
    done = cortex(stack, "agents", "create", "badcfg", "-t", "counter", "--config", "start=lots")
    assert done.returncode == 1
    assert done.stderr.startswith("error: 422")
    assert "$.config.start" in done.stderr
    assert "badcfg" not in names(stack)


def test_a_bad_name_is_explained_not_given_as_a_pattern(stack: Stack) -> None:
    done = cortex(stack, "agents", "create", "Bad_Name", "-t", "echo")
    assert done.returncode == 1
    assert done.stderr == (
        "error: 422 Unprocessable Entity: $.name: must be a DNS label: 1 to 63 lowercase "
        "letters, digits and '-', starting and ending with a letter or digit (e.g. "
        "`my-agent-1`)\n"
    )
    assert "Bad_Name" not in names(stack)


def test_usage_errors_exit_2(stack: Stack) -> None:
    assert cortex(stack, "agents", "create", "notemplate").returncode == 2
    assert (
        cortex(stack, "agents", "create", "x", "-t", "echo", "--config", "noequals").returncode == 2
    )
    assert cortex(stack, "agents", "send", "x").returncode == 2
    assert cortex(stack, "agents", "send", "x", "{oops", "--json").returncode == 2
    assert cortex(stack, "agents", "scale", "x", "many").returncode == 2
    assert cortex(stack, "agents", "update", "x").returncode == 2


def test_get_by_name_and_by_id(stack: Stack) -> None:
    ok(stack, "agents", "create", "getme", "-t", "echo", "--label", "tier=web")
    shown = ok(stack, "agents", "get", "getme")
    assert row(shown, "Name:") == ["Name:", "getme"]
    assert row(shown, "Status:") == ["Status:", "created"]
    assert row(shown, "Template:") == ["Template:", "echo@1"]
    assert row(shown, "Labels:") == ["Labels:", "tier=web"]
    agent_id = data(stack, "agents", "get", "getme")["id"]
    assert data(stack, "agents", "get", agent_id)["name"] == "getme"

    missing = cortex(stack, "agents", "get", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: 404")


def test_update_replaces_the_config(stack: Stack) -> None:
    ok(stack, "agents", "create", "upd", "-t", "counter", "--config", "start=1")
    preview = data(stack, "agents", "update", "upd", "--config", "start=7", "--dry-run")
    assert preview["config"] == {"start": 7}
    assert data(stack, "agents", "get", "upd")["config"] == {"start": 1}

    assert "updated agent upd" in ok(stack, "agents", "update", "upd", "--config", "start=7")
    ok(stack, "agents", "update", "upd", "--label", "team=ops")
    agent = data(stack, "agents", "get", "upd")
    assert agent["config"] == {"start": 7}
    assert agent["labels"] == {"team": "ops"}

    bad = cortex(stack, "agents", "update", "upd", "--config", "start=x")
    assert bad.returncode == 1
    assert "$.config.start" in bad.stderr


# --- running agents ----------------------------------------------------------------------


def test_deploy_runs_the_replicas_and_hosts_show_them(stack: Stack) -> None:
    agent = deployed(stack, "web", "echo", 2)
    assert agent["ready_replicas"] == 2

    shown = ok(stack, "agents", "get", "web")
    assert row(shown, "Status:") == ["Status:", "running"]
    assert row(shown, "Replicas:")[1] == "2/2"
    for instance in agent["instances"]:
        assert row(shown, instance["id"])[1:4] == [instance["host_id"], "healthy", "running"]
    assert row(ok(stack, "agents", "list"), "web")[1:3] == ["running", "2/2"]

    listed = ok(stack, "instances", "--agent", "web")
    assert {row(listed, i["id"])[1] for i in agent["instances"]} == {"web"}
    assert len(data(stack, "instances", "--agent", "web", "--status", "healthy")["items"]) == 2

    hosts = ok(stack, "hosts")
    host_id = agent["instances"][0]["host_id"]
    assert row(hosts, "ID") == ["ID", "HEALTH", "REPLICAS", "CPU%", "RSS", "LAST", "SEEN"]
    assert row(hosts, host_id)[1] == "healthy"
    assert row(hosts, host_id)[5] in ("B", "KiB", "MiB", "GiB")
    assert ok(stack, "hosts", "list").splitlines()[0] == hosts.splitlines()[0]
    assert host_id in {h["id"] for h in data(stack, "hosts")}


def test_send_with_wait_to_an_echo_agent_prints_the_same_json(stack: Stack) -> None:
    deployed(stack, "parrot", "echo", 1)
    payload = {"question": "ping", "n": [1, 2, 3], "nested": {"ok": True}}
    out = ok(stack, "agents", "send", "parrot", json.dumps(payload), "--wait", "10")
    assert json.loads(out) == payload

    message_id = ok(stack, "agents", "send", "parrot", "42").strip()
    assert len(message_id) >= 16
    assert message_id.count("\n") == 0


def test_send_text_to_an_echo_agent_prints_the_text(stack: Stack) -> None:
    deployed(stack, "mirror", "echo", 1)
    out = ok(stack, "agents", "send", "mirror", "hello there", "--wait", "10")
    assert out == "hello there\n"
    # --text keeps even a JSON-looking payload as text.
    assert ok(stack, "agents", "send", "mirror", "42", "--text", "--wait", "10") == "42\n"


def test_send_binary_and_headers(stack: Stack, tmp_path: Path) -> None:
    deployed(stack, "binecho", "echo", 1)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    done = subprocess.run(
        [CORTEX, "agents", "send", "binecho", "--binary-file", str(blob), "--wait", "10"],
        env=cortex_env(stack),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == bytes(range(256))

    bad = cortex(stack, "agents", "send", "binecho", "1", "--header", "Trace=1")
    assert bad.returncode == 1
    assert "$.headers.Trace" in bad.stderr
    assert ok(stack, "agents", "send", "binecho", "1", "--header", "X-Trace=1").strip()


def test_counter_replies_to_a_send_with_wait(stack: Stack) -> None:
    deployed(stack, "tally2", "counter", 1)
    assert json.loads(ok(stack, "agents", "send", "tally2", '{"by": 5}', "--wait", "10")) == {
        "count": 5
    }


def test_waiting_on_an_agent_that_does_not_run_is_refused_and_the_message_kept(
    stack: Stack,
) -> None:
    ok(stack, "agents", "create", "idle", "-t", "echo")  # not deployed: nobody can answer yet
    deploy_hint = "deploy it with: cortex agents deploy idle"
    kept = []
    for wait in (["--wait", "30"], ["--confirm", "30"]):
        refused = cortex(stack, "agents", "send", "idle", '{"q": 1}', *wait)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stdout == ""
        first, second = refused.stderr.splitlines()
        found = re.fullmatch(
            r"error: agent idle is created, not running: message (\S+) waits in its inbox and "
            r"is handled once the agent runs",
            first,
        )
        assert found, refused.stderr
        assert second == deploy_hint
        kept.append(found[1])

    plain = cortex(stack, "agents", "send", "idle", '{"q": 3}')
    assert plain.returncode == 0, plain.stderr
    kept.append(plain.stdout.strip())
    assert plain.stderr.splitlines() == [
        "note: agent idle is created, not running: the message waits in its inbox until it runs",
        deploy_hint,
    ]
    assert data(stack, "agents", "get", "idle")["status"] == "created"

    ok(stack, "agents", "deploy", "idle")
    for msg_id in kept:  # every one was stored, and is handled once the agent runs
        until(
            lambda m=msg_id: ((r := data(stack, "messages", "get", m))["status"] == "acked", r),
            f"message {msg_id} acked",
        )
    assert ok(stack, "agents", "send", "idle", '{"q": 4}', "--wait", "10") == '{\n  "q": 4\n}\n'


def test_scale_dry_run_then_scale(stack: Stack) -> None:
    deployed(stack, "scaler", "echo", 1)
    plan = ok(stack, "agents", "scale", "scaler", "3", "--dry-run")
    assert "dry run" in plan
    assert "2 to start, 0 to stop" in plan
    assert data(stack, "agents", "get", "scaler")["replicas"] == 1

    assert "2 to start" in ok(stack, "agents", "scale", "scaler", "3")

    def three() -> tuple[bool, Any]:
        agent = data(stack, "agents", "get", "scaler")
        return agent["replicas"] == 3 and healthy(agent) == 3, agent

    until(three, "scaler at 3 healthy replicas")
    down = data(stack, "agents", "scale", "scaler", "1")
    assert (down["add"], down["remove"]) == (0, 2)


def test_delete_terminates_and_purge_frees_the_name(stack: Stack) -> None:
    first = deployed(stack, "doomed", "echo", 1)
    out = ok(stack, "agents", "delete", "doomed", "--grace", "5")
    assert "terminating agent doomed" in out
    status = data(stack, "agents", "get", "doomed")["status"]
    assert status in ("terminating", "terminated")
    assert row(ok(stack, "agents", "get", "doomed"), "Status:")[1] in ("terminating", "terminated")

    # stdin is a pipe, so no question is asked; --yes says so explicitly anyway.
    assert "purged agent doomed" in ok(stack, "agents", "delete", "doomed", "--purge", "--yes")
    assert "doomed" not in names(stack)
    assert cortex(stack, "agents", "get", "doomed").returncode == 1

    again = data(stack, "agents", "create", "doomed", "-t", "echo")
    assert again["id"] != first["id"]
    assert again["status"] == "created"


def test_the_audit_names_the_token_that_made_each_change_not_what_a_caller_claims(
    stack: Stack,
) -> None:
    with stack.client() as admin:
        made = admin.post("/api/v1/tokens", json={"name": "auditee", "role": "operator"})
        assert made.status_code == 201, made.text
    with stack.client(made.json()["token"]) as operator:
        created = operator.post(
            "/api/v1/agents",
            json={"name": "audited", "template": "echo"},
            headers={"Cortex-Actor": "mallory", "X-Actor": "mallory"},
        )
        assert created.status_code == 201, created.text
        agent = created.json()["id"]
        scaled = operator.post(f"/api/v1/agents/{agent}/scale", json={"replicas": 2})
        assert scaled.status_code == 202, scaled.text
    with stack.client() as admin:
        by_actor = admin.get("/api/v1/audit", params={"actor": "api:auditee"}).json()
        assert [(c["type"], c["id"]) for c in by_actor["items"]] == [
            ("agent.name_claimed", "audited"),
            ("agent.created", agent),
            ("agent.scaled", agent),
        ]
        assert by_actor["next_after"] is None
        assert admin.get("/api/v1/audit", params={"actor": "mallory"}).json()["items"] == []
        first = admin.get("/api/v1/audit", params={"id": agent, "limit": 1}).json()
        assert [c["type"] for c in first["items"]] == ["agent.created"]
        rest = admin.get("/api/v1/audit", params={"id": agent, "after": first["next_after"]}).json()
        assert [c["type"] for c in rest["items"]] == ["agent.scaled"]
        kinds = admin.get("/api/v1/audit", params={"kind": "template"}).json()["items"]
        assert {c["kind"] for c in kinds} == {"template"}
        stamp = by_actor["items"][1]["occurred_at"]
        before = {"actor": "api:auditee", "until": stamp}
        assert [c["type"] for c in admin.get("/api/v1/audit", params=before).json()["items"]] == [
            "agent.name_claimed"
        ]
        later = {"actor": "api:auditee", "since": "2100-01-01T00:00:00Z"}
        assert admin.get("/api/v1/audit", params=later).json()["items"] == []
        bad = admin.get("/api/v1/audit", params={"since": "yesterday"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "query.since"

    table = ok(stack, "audit", "--actor", "api:auditee", "--kind", "agent")
    assert [row(table, line.split()[0])[1:4] for line in table.splitlines()[-2:]] == [
        ["api:auditee", "agent.created", agent],
        ["api:auditee", "agent.scaled", agent],
    ]
    assert data(stack, "audit", "--id", agent, "--limit", "1")[0]["type"] == "agent.created"
