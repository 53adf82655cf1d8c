"""Agents as a user drives them over HTTP: create, deploy, talk, scale, terminate, heal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.stack import FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`cortex up` with two agent hosts and fast health clocks."""
    stack = Stack(
        tmp_path_factory.mktemp("agents"),
        CORTEX_HOSTS="2",
        CORTEX_AGENT_PATH=str(Path(__file__).resolve().parents[2]),
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


def agent(api: httpx.Client, ref: str) -> dict[str, Any]:
    reply = api.get(f"/api/v1/agents/{ref}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_an_echo_agent_from_create_to_terminated(platform: Stack) -> None:
    with platform.client() as api:
        created = api.post(
            "/api/v1/agents", json={"name": "echo-1", "template": "echo", "labels": {"team": "qa"}}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["name"], body["status"], body["template"]) == ("echo-1", "created", "echo")
        agent_id = body["id"]

        deployed = api.post("/api/v1/agents/echo-1/deploy", json={"replicas": 3})
        assert deployed.status_code == 202, deployed.text
        assert deployed.json()["status"] == "deploying"

        def three_healthy() -> bool:
            view = agent(api, agent_id)
            healthy = [
                i for i in view["instances"] if i["health"] == "healthy" and i["state"] == "running"
            ]
            return view["status"] == "running" and view["ready_replicas"] == 3 and len(healthy) == 3

        eventually(three_healthy, what="3 healthy replicas")
        hosts = {i["host_id"] for i in agent(api, "echo-1")["instances"]}
        assert len(hosts) == 2  # least loaded first spreads them over both hosts

        reply = api.post(
            "/api/v1/agents/echo-1/messages",
            params={"wait": 10},
            json={"payload": {"hello": "world", "n": [1, 2]}},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "replied"
        assert reply.json()["reply"]["payload"] == {"hello": "world", "n": [1, 2]}
        assert reply.json()["reply"]["content_type"] == "application/json"
        text = api.post(
            "/api/v1/agents/echo-1/messages",
            params={"wait": 10},
            json={"payload": "plain words", "content_type": "text/plain"},
        )
        assert text.json()["reply"]["payload"] == "plain words"

        plan = api.post("/api/v1/agents/echo-1/scale", json={"replicas": 1})
        assert plan.status_code == 202
        assert (plan.json()["add"], plan.json()["remove"]) == (0, 2)
        eventually(
            lambda: (
                agent(api, "echo-1")["status"] == "running"
                and len(agent(api, "echo-1")["instances"]) == 1
            ),
            what="scaled to 1",
        )

        gone = api.delete("/api/v1/agents/echo-1", params={"grace": 2})
        assert gone.status_code == 202
        assert gone.json()["status"] == "terminating"
        eventually(lambda: agent(api, "echo-1")["status"] == "terminated", what="terminated")
        instances = api.get("/api/v1/instances", params={"agent": agent_id}).json()["items"]
        assert instances == []
        # The record and name stay; the agent can run again.
        again = api.post("/api/v1/agents/echo-1/deploy")
        assert again.json()["status"] == "deploying"
        eventually(lambda: agent(api, "echo-1")["status"] == "running", what="redeployed")
        purged = api.delete("/api/v1/agents/echo-1", params={"purge": "true", "grace": 1})
        assert purged.status_code == 202
        eventually(lambda: api.get("/api/v1/agents/echo-1").status_code == 404, what="purged")
        assert (
            api.post("/api/v1/agents", json={"name": "echo-1", "template": "echo"}).status_code
            == 201
        )


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(platform: Stack) -> None:
    with platform.client() as api:
        before = api.get("/api/v1/agents").json()["total"]
        missing = api.post("/api/v1/agents", json={"name": "x1", "template": "no-such"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        bad_config = api.post(
            "/api/v1/agents", json={"name": "c1", "template": "counter", "config": {"start": "ten"}}
        )
        assert bad_config.status_code == 422
        assert bad_config.json()["errors"][0]["field"] == "$.config.start"
        bad_name = api.post("/api/v1/agents", json={"name": "Not_A_Label", "template": "echo"})
        assert bad_name.status_code == 422
        assert bad_name.json()["errors"][0] == {
            "field": "$.name",
            "message": "must be a DNS label: 1 to 63 lowercase letters, digits and '-', starting "
            "and ending with a letter or digit (e.g. `my-agent-1`)",
        }
        negative = api.post(
            "/api/v1/agents", json={"name": "n1", "template": "echo", "replicas": -1}
        )
        assert negative.status_code == 422
        assert negative.json()["errors"][0]["field"] == "$.replicas"
        assert (
            api.post("/api/v1/agents", json={"name": "dup", "template": "echo"}).status_code == 201
        )
        taken = api.post("/api/v1/agents", json={"name": "dup", "template": "echo"})
        assert taken.status_code == 409
        assert api.post("/api/v1/agents/nobody/scale", json={"replicas": 1}).status_code == 404
        assert api.post("/api/v1/agents/dup/scale", json={"replicas": -2}).status_code == 422
        assert api.get("/api/v1/agents").json()["total"] == before + 1


def test_the_same_template_again_is_200_and_changes_nothing(platform: Stack) -> None:
    spec = {"name": "again", "handler": "cortex.sdk.builtin:Echo"}
    with platform.client() as api:
        first = api.post("/api/v1/templates", json=spec)
        assert first.status_code == 201, first.text
        again = api.post("/api/v1/templates", json=spec)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert [v["version"] for v in api.get("/api/v1/templates/again").json()["versions"]] == [
            "1"
        ]
        other = api.post("/api/v1/templates", json={**spec, "description": "another"})
        assert other.status_code == 409


def test_dry_run_shows_what_would_happen_and_changes_nothing(platform: Stack) -> None:
    with platform.client() as api:
        preview = api.post(
            "/api/v1/agents",
            params={"dry_run": "true"},
            json={"name": "dry", "template": "counter", "replicas": 2, "config": {"start": 5}},
        )
        assert preview.status_code == 200
        assert preview.json()["config"] == {"start": 5}
        assert api.get("/api/v1/agents/dry").status_code == 404
        api.post("/api/v1/agents", json={"name": "wet", "template": "counter"})
        plan = api.post(
            "/api/v1/agents/wet/scale", params={"dry_run": "true"}, json={"replicas": 4}
        )
        assert plan.status_code == 200  # an answer, not "accepted": nothing is to happen
        assert plan.json()["dry_run"] is True
        assert plan.json()["agent"]["replicas"] == 4
        assert agent(api, "wet")["replicas"] == 1
        update = api.put(
            "/api/v1/agents/wet", params={"dry_run": "true"}, json={"config": {"start": 9}}
        )
        assert update.json()["config"] == {"start": 9}
        assert agent(api, "wet")["config"] == {"start": 0}


def test_filters_and_pages(platform: Stack) -> None:
    with platform.client() as api:
        for i in range(5):
            api.post(
                "/api/v1/agents",
                json={
                    "name": f"page-{i}",
                    "template": "echo",
                    "labels": {"set": "paging", "odd": str(i % 2)},
                },
            )
        first = api.get("/api/v1/agents", params={"label": "set=paging", "limit": 2}).json()
        assert [a["name"] for a in first["items"]] == ["page-0", "page-1"]
        assert first["total"] == 5
        second = api.get(
            "/api/v1/agents", params={"label": "set=paging", "limit": 2, "after": first["next"]}
        ).json()
        assert [a["name"] for a in second["items"]] == ["page-2", "page-3"]
        odd = api.get("/api/v1/agents", params=[("label", "set=paging"), ("label", "odd=1")])
        assert [a["name"] for a in odd.json()["items"]] == ["page-1", "page-3"]
        # A name filter finds the text anywhere in the name, in any case.
        named = api.get("/api/v1/agents", params={"name": "GE-3"}).json()
        assert [a["name"] for a in named["items"]] == ["page-3"]
        assert api.get("/api/v1/agents", params={"label": "nonsense"}).status_code == 422


def start_loose_host(platform: Stack, name: str) -> subprocess.Popen[bytes]:
    """An agent host outside `cortex up`'s supervision: once killed, it stays dead."""
    env = {
        **platform.env,
        **platform.role_env("host"),
        "CORTEX_HOST_NAME": name,
    }
    log = (platform.root / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "cortex.host"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def test_a_killed_host_goes_unhealthy_then_gone_and_is_replaced(platform: Stack) -> None:
    loose = start_loose_host(platform, "loose")
    try:
        with platform.client() as api:
            eventually(
                lambda: any(
                    h["id"] == "loose" and h["health"] == "healthy"
                    for h in api.get("/api/v1/hosts").json()
                ),
                what="the extra host registered",
            )
            api.post(
                "/api/v1/agents",
                json={"name": "sturdy", "template": "echo", "replicas": 3, "deploy": True},
            )
            eventually(lambda: agent(api, "sturdy")["status"] == "running", what="running")
            on_loose = [
                i["id"] for i in agent(api, "sturdy")["instances"] if i["host_id"] == "loose"
            ]
            assert on_loose, "least loaded placement put nothing on the empty host"
            loose.send_signal(signal.SIGKILL)
            loose.wait()

            def health_of(wanted: str) -> bool:
                seen = api.get("/api/v1/instances", params={"host": "loose"}).json()["items"]
                return any(i["id"] in on_loose and i["health"] == wanted for i in seen)

            eventually(lambda: health_of("unhealthy"), timeout=10, what="unhealthy")
            eventually(lambda: health_of("gone"), timeout=15, what="gone")

            def replaced() -> bool:
                view = agent(api, "sturdy")
                healthy = [i for i in view["instances"] if i["health"] == "healthy"]
                return len(healthy) == 3 and all(i["host_id"] != "loose" for i in healthy)

            eventually(replaced, timeout=30, what="replacements on the other hosts")
            reply = api.post(
                "/api/v1/agents/sturdy/messages",
                params={"wait": 10},
                json={"payload": "still here", "content_type": "text/plain"},
            )
            assert reply.json()["reply"]["payload"] == "still here"
    finally:
        if loose.poll() is None:
            loose.kill()


def test_a_crashed_host_under_cortex_up_is_restarted_and_its_replicas_replaced(
    platform: Stack,
) -> None:
    with platform.client() as api:
        api.post(
            "/api/v1/agents",
            json={"name": "phoenix", "template": "echo", "replicas": 2, "deploy": True},
        )
        eventually(lambda: agent(api, "phoenix")["status"] == "running", what="running")
        before = {i["id"] for i in agent(api, "phoenix")["instances"]}
        victim = agent(api, "phoenix")["instances"][0]["host_id"]
        os.kill(platform.child_pid("cortex.host", CORTEX_HOST_NAME=victim), signal.SIGKILL)

        def healthy_again() -> bool:
            view = agent(api, "phoenix")
            healthy = {i["id"] for i in view["instances"] if i["health"] == "healthy"}
            return len(healthy) == 2 and healthy != before

        eventually(healthy_again, timeout=30, what="two healthy replicas, one of them new")


@pytest.mark.parametrize("service", ["cortex.lifecycle", "cortex.registry"])
def test_restarting_a_service_loses_nothing(platform: Stack, service: str) -> None:
    with platform.client() as api:
        api.post(
            "/api/v1/agents",
            json={"name": f"keep-{service[7:]}", "template": "echo", "deploy": True},
        )
        eventually(lambda: agent(api, f"keep-{service[7:]}")["status"] == "running", what="running")
        before = _summary(api)
        os.kill(platform.child_pid(service), signal.SIGKILL)
        eventually(
            lambda: _summary(api) == before,
            timeout=30,
            what=f"the same agents after {service} restarted",
        )


def _summary(api: httpx.Client) -> list[tuple[str, str, int]]:
    page = api.get("/api/v1/agents", params={"limit": 1000})
    assert page.status_code == 200
    return [(a["name"], a["status"], a["replicas"]) for a in page.json()["items"]]


def test_instances_and_hosts_are_listed(platform: Stack) -> None:
    with platform.client() as api:

        def both_hosts_healthy() -> list[dict[str, Any]]:
            reply = api.get("/api/v1/hosts")
            assert reply.status_code == 200, reply.text
            # After a registry restart, usage figures return with the next heartbeat.
            hosts = [h for h in reply.json() if h["health"] == "healthy" and h["rss_bytes"] > 0]
            return hosts if {h["id"] for h in hosts} >= {"host-1", "host-2"} else []

        eventually(both_hosts_healthy, what="both supervised hosts healthy, with usage")
        healthy = api.get("/api/v1/instances", params={"status": "healthy"}).json()["items"]
        assert healthy
        assert all(i["health"] == "healthy" for i in healthy)


def register(api: httpx.Client, name: str, handler: str) -> None:
    reply = api.post("/api/v1/templates", json={"name": name, "handler": handler})
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (  # allowed by CORTEX_AGENT_MODULES, but not installed on the hosts
            "tests.support.nowhere:Agent",
            "cannot import 'tests.support.nowhere': No module named 'tests.support.nowhere'; "
            "agent hosts import handlers from the folders in CORTEX_AGENT_PATH",
        ),
        (
            "tests.support.sample_agents:BrokenStart",
            "on_start failed: RuntimeError: missing API key",
        ),
        ("tests.support.sample_agents:Message", "is not a subclass of cortex.sdk.Agent"),
    ],
)
def test_an_agent_that_cannot_start_fails_with_the_reason(
    platform: Stack, handler: str, reason: str
) -> None:
    name = "broken-" + str(abs(hash(handler)) % 10_000)
    with platform.client() as api:
        register(api, name, handler)
        api.post("/api/v1/agents", json={"name": name, "template": name, "deploy": True})
        view = eventually(
            lambda: (v := agent(api, name))["status"] == "failed" and v, what="failed status"
        )
        assert reason in view["status_reason"]
        assert view["instances"] == []


def test_a_failing_handler_answers_a_request_with_its_error(platform: Stack) -> None:
    with platform.client() as api:
        register(api, "refuses", "tests.support.sample_agents:Refuses")
        api.post("/api/v1/agents", json={"name": "refuser", "template": "refuses", "deploy": True})
        eventually(lambda: agent(api, "refuser")["status"] == "running", what="running")
        reply = api.post(
            "/api/v1/agents/refuser/messages",
            params={"wait": 5},
            json={"payload": "please", "content_type": "text/plain"},
        )
        assert reply.status_code == 200
        assert reply.json()["status"] == "error"
        assert reply.json()["error"] == "ValueError: cannot handle 'please'"


SECRET = "sk-live-0123456789abcdef"
VAULT_SCHEMA = {
    "type": "object",
    "properties": {
        "api_key": {"type": "string", "writeOnly": True, "minLength": 12},
        "region": {"type": "string"},
    },
}


def test_a_secret_config_value_reaches_the_agent_and_nothing_else(platform: Stack) -> None:
    import hashlib

    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    handler = "tests.support.sample_agents:SecretTeller"
    with platform.client() as api:
        # A template is stored in clear: a secret field cannot have a default there.
        defaulted = api.post(
            "/api/v1/templates",
            json={
                "name": "vault-defaulted",
                "handler": handler,
                "config_schema": VAULT_SCHEMA,
                "default_config": {"api_key": SECRET},
            },
        )
        assert defaulted.status_code == 422, defaulted.text
        assert "$.default_config.api_key" in {e["field"] for e in defaulted.json()["errors"]}
        made = api.post(
            "/api/v1/templates",
            json={"name": "vault", "handler": handler, "config_schema": VAULT_SCHEMA},
        )
        assert made.status_code == 201, made.text

        short = api.post(
            "/api/v1/agents",
            json={"name": "v0", "template": "vault", "config": {"api_key": "x", "region": "eu"}},
        )
        assert short.status_code == 422
        assert short.json()["errors"][0]["field"] == "$.config.api_key"
        # The value is not repeated in the refusal (jsonschema's own message would: `'x' is
        # too short`).
        assert short.json()["errors"][0]["message"] == (
            "does not satisfy `minLength` (12); the value is secret, so it is not repeated"
        )

        created = api.post(
            "/api/v1/agents",
            json={
                "name": "vault-1",
                "template": "vault",
                "deploy": True,
                "config": {"api_key": SECRET, "region": "eu"},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["config"] == {"api_key": "***", "region": "eu"}
        assert agent(api, "vault-1")["config"] == {"api_key": "***", "region": "eu"}
        listed = api.get("/api/v1/agents", params={"template": "vault"}).json()["items"]
        assert [a["config"] for a in listed] == [{"api_key": "***", "region": "eu"}]

        def answer() -> dict[str, Any]:
            reply = api.post(
                "/api/v1/agents/vault-1/messages", params={"wait": 10}, json={"payload": "tell"}
            )
            assert reply.status_code == 200, reply.text
            return dict(reply.json()["reply"]["payload"])

        assert eventually(answer, what="the agent answers") == {
            "api_key_sha256": digest,
            "region": "eu",
        }

        # `***` given back keeps the secret; the rest of the config changes.
        kept = api.put(
            "/api/v1/agents/vault-1", json={"config": {"api_key": "***", "region": "us"}}
        )
        assert kept.status_code == 200, kept.text
        assert kept.json()["config"] == {"api_key": "***", "region": "us"}
        eventually(
            lambda: answer() == {"api_key_sha256": digest, "region": "us"},
            what="the new config in use with the same secret",
        )

        changes = api.get("/api/v1/audit", params={"id": created.json()["id"]}).json()["items"]
        configs = [c["data"]["config"] for c in changes if c["data"].get("config")]
        assert configs == [
            {"api_key": "***", "region": "eu"},
            {"api_key": "***", "region": "us"},
        ]

    # Not in clear anywhere the platform writes: event stores, NATS's streams, logs.
    leaks = [
        str(path.relative_to(platform.data_dir))
        for path in platform.data_dir.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
