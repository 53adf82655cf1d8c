"""`cortex send --confirm | publish | messages | subscribe | topics | dlq` against a running
platform, as a user runs them: the `cortex` executable in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex.cli.sse import parse_events
from tests.support.polling import until
from tests.support.stack import ADMIN_TOKEN, CORTEX, FAST_HEALTH, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared `stack` of conftest.py, but with the repository on CORTEX_AGENT_PATH: its hosts
    must import `tests.support.sample_agents:Flaky` for the dead-letter test."""
    running = Stack(
        tmp_path_factory.mktemp("cli-messaging"), CORTEX_AGENT_PATH=str(REPO), **FAST_HEALTH
    ).start()
    yield running
    running.stop()


def cortex(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs with a pipe as stdin (never a terminal: nothing may prompt) and without the test
    process's own CORTEX_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    done = subprocess.run(
        [CORTEX, *args],
        env=env | {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN},
        input="",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(stack: Stack, *args: str) -> str:
    done = cortex(stack, *args)
    assert done.returncode == 0, f"cortex {' '.join(args)}: {done.stderr}"
    return done.stdout


def data(stack: Stack, *args: str) -> Any:
    return json.loads(ok(stack, *args, "--json"))


def fails(stack: Stack, *args: str, code: int = 1) -> subprocess.CompletedProcess[str]:
    """A command that must fail with `code` (1: one `error:` line on stderr)."""
    done = cortex(stack, *args)
    assert done.returncode == code, f"cortex {' '.join(args)}: {done.returncode} {done.stderr}"
    if code == 1:
        assert done.stderr.startswith("error: "), done.stderr
    return done


def row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first column is `first`."""
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{table}")


def running(stack: Stack, name: str, *create: str) -> dict[str, Any]:
    ok(stack, "agents", "create", name, *create, "--deploy")

    def up() -> tuple[bool, Any]:
        view = data(stack, "agents", "get", name)
        return view["status"] == "running" and view["ready_replicas"] == view["replicas"], view

    return dict(until(up, f"{name} running"))


def test_send_confirm_prints_acked(stack: Stack) -> None:
    running(stack, "m-echo", "--template", "echo")
    assert ok(stack, "send", "m-echo", '{"n": 1}', "--confirm", "10") == "acked\n"
    # The same command under `agents`.
    assert ok(stack, "agents", "send", "m-echo", "plain", "--confirm", "10") == "acked\n"
    # Without --confirm or --wait: the id; then the message's status by that id.
    msg_id = ok(stack, "send", "m-echo", "hello").strip()
    record = until(
        lambda: ((r := data(stack, "messages", "get", msg_id))["status"] == "acked", r),
        "the message acked",
    )
    assert (record["kind"], record["content_type"], record["deliveries"]) == (
        "direct",
        "text/plain",
        1,
    )
    assert "Status:       acked" in ok(stack, "messages", "get", msg_id)

    both = fails(stack, "send", "m-echo", "x", "--wait", "5", "--confirm", "5", code=2)
    assert "exclude each other" in both.stderr
    assert "no message" in fails(stack, "messages", "get", "no-such-id").stderr


def test_a_published_message_reaches_a_subscriber_and_shows_in_its_history(stack: Stack) -> None:
    agent = running(stack, "m-reader", "--template", "echo")
    assert ok(stack, "subscribe", "m-reader", "news") == "subscribed agent m-reader to topic news\n"
    assert row(ok(stack, "subscriptions", "m-reader"), "news")[1] == "runtime"
    assert row(ok(stack, "topics"), "news")[1] == "1"

    topic_msg = ok(stack, "publish", "news", '{"headline": "extra"}').strip()

    def copied() -> tuple[bool, Any]:
        items = data(stack, "messages", "m-reader")["items"]
        copies = [m for m in items if m.get("origin_id") == topic_msg]
        return bool(copies) and copies[0]["status"] == "acked", items

    (copy,) = [m for m in until(copied, "the copy handled") if m.get("origin_id") == topic_msg]
    assert (copy["kind"], copy["topic"], copy["to"]) == ("copy", "news", agent["id"])
    cells = row(ok(stack, "messages", "m-reader"), copy["id"])
    assert cells[1:6] == ["copy", "api:admin", "topic:news", "acked", "1"]

    # The topic message itself, from the publisher's side.
    shown = ok(stack, "messages", "get", topic_msg)
    assert "Kind:         topic" in shown
    assert "Copies:       1 (one per subscriber)" in shown
    assert data(stack, "messages", "get", topic_msg)["copies"] == 1

    assert ok(stack, "unsubscribe", "m-reader", "news") == (
        "unsubscribed agent m-reader from topic news\n"
    )
    assert data(stack, "subscriptions", "m-reader") == []
    assert "subscribed to no topic" in cortex(stack, "subscriptions", "m-reader").stderr
    refused = fails(stack, "unsubscribe", "m-reader", "news")
    # Named as the user named it: the messaging service knows agents by id only.
    assert refused.stderr == "error: 404 Not Found: agent m-reader is not subscribed to news\n"
    fails(stack, "publish", "bad topic!", "x")


def dead_letter_events(stack: Stack, count: int, **params: Any) -> list[dict[str, Any]]:
    """The first `count` events of `GET /api/v1/dlq/events` (`last_event_id` as the header)."""
    headers = {}
    if "last_event_id" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id"))
    found: list[dict[str, Any]] = []
    with (
        stack.client() as api,
        api.stream("GET", "/api/v1/dlq/events", params=params, headers=headers) as stream,
    ):
        assert stream.status_code == 200, stream.read()
        for event in parse_events(stream.iter_lines()):
            assert event.event == "dead_letter"
            found.append(json.loads(event.data))
            assert str(found[-1]["seq"]) == event.id
            if len(found) == count:
                return found
    raise AssertionError(f"the stream ended after {found}")


def test_dead_letters_are_listed_shown_purged_and_replayed(stack: Stack, tmp_path: Path) -> None:
    template = tmp_path / "flaky.yaml"
    template.write_text(
        "name: flaky-cli\n"
        "handler: tests.support.sample_agents:Flaky\n"
        "max_deliveries: 2\n"
        "config_schema: {type: object, properties: {fail: {type: boolean}}}\n"
    )
    ok(stack, "templates", "register", "-f", str(template))
    running(stack, "m-flaky", "--template", "flaky-cli", "--config", "fail=true")

    dead = fails(stack, "send", "m-flaky", "job-1", "--confirm", "30")
    assert dead.stdout == "dead_lettered\n"
    found = re.search(r"message (\S+);", dead.stderr)
    assert found, dead.stderr
    first = found[1]
    assert f"cortex dlq show {first}" in dead.stderr
    second = ok(stack, "send", "m-flaky", "job-2", "--header", "X-Trace=t2").strip()

    def both_dead() -> tuple[bool, Any]:
        page = data(stack, "dlq", "list", "--agent", "m-flaky")
        return {d["id"] for d in page["items"]} == {first, second}, page

    until(both_dead, "both messages dead-lettered")
    # The queue's own live stream told of both, and resumes after the first.
    agent_id = data(stack, "agents", "get", "m-flaky")["id"]
    arrived = dead_letter_events(stack, 2, agent="m-flaky", after=0)
    assert [(e["agent_id"], e["reason"]) for e in arrived] == [(agent_id, arrived[0]["reason"])] * 2
    assert arrived[0]["seq"] < arrived[1]["seq"]
    resumed = dead_letter_events(stack, 1, agent="m-flaky", last_event_id=arrived[0]["seq"])
    assert resumed == arrived[1:]
    table = ok(stack, "dlq", "list", "--agent", "m-flaky")
    assert row(table, first)[1:4] == ["m-flaky", "api:admin", "2"]
    assert "RuntimeError: upstream API rejected the request" in table

    shown = ok(stack, "dlq", "show", first)
    assert "Deliveries:   2" in shown
    assert "Last error:   RuntimeError: upstream API rejected the request" in shown
    assert shown.endswith("Payload\njob-1\n")
    letter = data(stack, "dlq", "show", second)
    assert (letter["payload"], letter["headers"]) == ("job-2", {"X-Trace": "t2"})
    assert data(stack, "messages", "get", first)["status"] == "dead_lettered"
    kept = cortex(stack, "messages", "get", second)
    assert kept.stderr == f"see it with: cortex dlq show {second}\n"
    assert data(stack, "messages", "get", second)["dead_letter"] == "kept"

    assert ok(stack, "dlq", "purge", second, "--yes") == f"purged dead letter {second}\n"
    assert "no dead letter" in fails(stack, "dlq", "show", second).stderr
    # The message's status stays dead_lettered; what it suggests is what still works.
    purged = cortex(stack, "messages", "get", second)
    assert re.search(r"^Status:\s+dead_lettered$", purged.stdout, re.M), purged.stdout
    assert "cortex dlq" not in purged.stderr
    assert purged.stderr == "its dead letter was purged (or aged out of the dead-letter queue)\n"
    assert data(stack, "messages", "get", second)["dead_letter"] == "purged"

    # Fix the agent: a new config replaces its replicas; then replay.
    before = {i["id"] for i in data(stack, "agents", "get", "m-flaky")["instances"]}
    ok(stack, "agents", "update", "m-flaky", "--config", "fail=false")

    def replaced() -> tuple[bool, Any]:
        view = data(stack, "agents", "get", "m-flaky")
        fresh = [
            i
            for i in view["instances"]
            if i["id"] not in before and i["health"] == "healthy" and i["state"] == "running"
        ]
        return view["status"] == "running" and len(fresh) == len(view["instances"]) == 1, view

    until(replaced, "replicas with the new config")
    replay = cortex(stack, "dlq", "replay", first)
    assert replay.returncode == 0, replay.stderr
    new_id = replay.stdout.strip()
    assert new_id == f"{first}-r1"
    assert f"cortex messages get {new_id}" in replay.stderr
    until(
        lambda: ((r := data(stack, "messages", "get", new_id))["status"] == "acked", r),
        "the replayed message handled",
    )
    assert data(stack, "dlq", "list", "--agent", "m-flaky")["items"] == []
    replayed = cortex(stack, "messages", "get", first)
    assert replayed.stderr == f"replayed as {new_id}: cortex messages get {new_id}\n"
    record = data(stack, "messages", "get", first)
    assert (record["dead_letter"], record["replayed_as"]) == ("replayed", new_id)
    assert "no dead letters" in cortex(stack, "dlq", "list", "--agent", "m-flaky").stderr
    fails(stack, "dlq", "replay", first)


def test_the_outside_publisher_of_docs_messaging_md_works(stack: Stack, tmp_path: Path) -> None:
    """The nats-py snippet of docs/messaging.md, run as it stands against this stack's NATS."""
    agent = running(stack, "m-outside", "--template", "echo")
    ok(stack, "subscribe", "m-outside", "news")
    doc = (REPO / "docs" / "messaging.md").read_text()
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "nats.connect" in b]
    script = tmp_path / "outside.py"
    script.write_text(snippet)
    done = subprocess.run(
        [sys.executable, str(script), agent["id"]],
        env=os.environ
        | {
            "NATS_URL": f"nats://127.0.0.1:{stack.nats_port}",
            "NATS_NKEY": stack.nats_seed("publisher"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    sent, replied = done.stdout.splitlines()
    assert replied == 'ok {"hi": 2}'  # echo answers with what it got

    def all_in() -> tuple[bool, Any]:
        items = data(stack, "messages", "m-outside")["items"]
        mine = [m for m in items if m["from"] == "my-script"]
        return len(mine) == 3 and all(m["status"] == "acked" for m in mine), items

    items = until(all_in, "the snippet's three messages handled")
    kinds = sorted(m["kind"] for m in items if m["from"] == "my-script")
    assert kinds == ["copy", "direct", "direct"]
    assert sent.split()[1] in {m["id"] for m in items}
    assert row(ok(stack, "messages", "m-outside"), sent.split()[1])[2] == "my-script"
