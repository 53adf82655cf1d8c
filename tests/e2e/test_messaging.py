"""Messaging as a user meets it: confirmations, topics, dead letters, long and large messages."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex.cli.sse import parse_events
from tests.support.polling import eventually
from tests.support.stack import FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("messaging"),
        CORTEX_AGENT_PATH=str(REPO),
        CORTEX_ACK_WAIT="3",
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


def template(api: httpx.Client, name: str, handler: str, **extra: Any) -> None:
    reply = api.post("/api/v1/templates", json={"name": name, "handler": handler, **extra})
    assert reply.status_code == 201, reply.text


def running(api: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    created = api.post("/api/v1/agents", json={"name": name, "deploy": True, **body})
    assert created.status_code == 201, created.text
    eventually(
        lambda: api.get(f"/api/v1/agents/{name}").json()["status"] == "running",
        what=f"{name} running",
    )
    return dict(created.json())


def instance_ids(api: httpx.Client, agent: str) -> set[str]:
    return {i["id"] for i in api.get(f"/api/v1/agents/{agent}").json()["instances"]}


def replaced(api: httpx.Client, agent: str, before: set[str]) -> None:
    """Until the agent runs again on replicas that are all new, healthy, and the old gone."""

    def done() -> bool:
        view = api.get(f"/api/v1/agents/{agent}").json()
        now = {i["id"] for i in view["instances"]}
        return (
            view["status"] == "running"
            and len(now) == view["replicas"]
            and not now & before
            and all(i["health"] == "healthy" for i in view["instances"])
        )

    eventually(done, what=f"{agent}'s replicas replaced")


def host_metric(stack: Stack, sample: str) -> float:
    """A sample of the agent host's /metrics (its admin port is in the platform's status)."""
    with stack.client() as api:
        services = api.get("/api/v1/status").json()["services"]
    admin = next(
        i["metadata"]["admin_url"] for s in services if s["name"] == "host" for i in s["instances"]
    )
    for line in httpx.get(f"{admin}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_confirmed_send_reports_acked_and_the_status_says_so(platform: Stack) -> None:
    with platform.client() as api:
        running(api, "confirm-echo", template="echo")
        sent = api.post(
            "/api/v1/agents/confirm-echo/messages",
            params={"confirm": 10},
            json={"payload": {"n": 1}},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "acked"
        record = eventually(
            lambda: (
                (r := api.get(f"/api/v1/messages/{sent.json()['id']}")).json()["status"] == "acked"
                and r.json()
            ),
            what="status acked",
        )
        assert record["deliveries"] == 1
        assert record["kind"] == "direct"
        history = api.get("/api/v1/agents/confirm-echo/messages").json()["items"]
        assert sent.json()["id"] in [m["id"] for m in history]

        # The hosts' reports of it, from the agent's live stream of message statuses (read
        # from its start, so it is there whenever this test reads it).
        reports = []
        with api.stream(
            "GET", "/api/v1/agents/confirm-echo/messages/events", params={"after": 0}
        ) as stream:
            assert stream.status_code == 200, stream.read()
            for event in parse_events(stream.iter_lines()):
                assert event.event == "message_status"
                report = json.loads(event.data)
                reports.append((report["msg_id"], report["status"], report["delivery"]))
                if report["status"] == "acked":
                    break
        assert reports[-1] == (sent.json()["id"], "acked", 1)


def test_a_failing_message_is_dead_lettered_and_replayed_after_the_fix(platform: Stack) -> None:
    with platform.client() as api:
        template(
            api,
            "flaky",
            "tests.support.sample_agents:Flaky",
            max_deliveries=3,
            config_schema={"type": "object", "properties": {"fail": {"type": "boolean"}}},
        )
        running(api, "flaky-1", template="flaky", config={"fail": True})
        sent = api.post(
            "/api/v1/agents/flaky-1/messages",
            params={"confirm": 30},
            json={"payload": "job-7", "content_type": "text/plain"},
        )
        assert sent.json()["status"] == "dead_lettered", sent.text
        msg_id = sent.json()["id"]
        dead = api.get(f"/api/v1/dlq/{msg_id}").json()
        assert dead["deliveries"] == 3
        assert dead["last_error"] == "RuntimeError: upstream API rejected the request"
        assert dead["payload"] == "job-7"
        listed = api.get("/api/v1/dlq", params={"agent": "flaky-1"}).json()
        assert [d["id"] for d in listed["items"]] == [msg_id]
        assert api.get(f"/api/v1/messages/{msg_id}").json()["status"] == "dead_lettered"

        # Fix the config: the replicas are replaced with the new one, then replay.
        failing = instance_ids(api, "flaky-1")
        api.put("/api/v1/agents/flaky-1", json={"config": {"fail": False}})
        replaced(api, "flaky-1", failing)
        replayed = api.post(f"/api/v1/dlq/{msg_id}/replay")
        assert replayed.status_code == 202, replayed.text
        new_id = replayed.json()["id"]
        eventually(
            lambda: api.get(f"/api/v1/messages/{new_id}").json()["status"] == "acked",
            what="the replay handled",
        )
        assert api.get(f"/api/v1/dlq/{msg_id}").status_code == 404

        # Purging a dead letter.
        fixed = instance_ids(api, "flaky-1")
        api.put("/api/v1/agents/flaky-1", json={"config": {"fail": True}})
        replaced(api, "flaky-1", fixed)
        again = api.post(
            "/api/v1/agents/flaky-1/messages",
            params={"confirm": 30},
            json={"payload": "job-8", "content_type": "text/plain"},
        )
        assert again.json()["status"] == "dead_lettered"
        assert api.delete(f"/api/v1/dlq/{again.json()['id']}").status_code == 204
        assert api.get(f"/api/v1/dlq/{again.json()['id']}").status_code == 404


def test_a_topic_delivers_each_message_once_to_each_subscriber(platform: Stack) -> None:
    """reader-a subscribes through its template (2 replicas, records what it handles),
    reader-b and reader-d at run time (echo agents, checked through their message history),
    reader-c unsubscribes from its template's topic and must get nothing."""
    with platform.client() as api:
        template(api, "recorder", "tests.support.sample_agents:Recorder", topics=["news"])
        running(api, "reader-a", template="recorder", replicas=2)
        running(api, "reader-b", template="echo")
        running(api, "reader-c", template="recorder")
        api.delete("/api/v1/agents/reader-c/subscriptions/news")
        assert (
            api.post("/api/v1/agents/reader-b/subscriptions", json={"topic": "news"}).status_code
            == 201
        )
        running(api, "reader-d", template="echo")
        api.post("/api/v1/agents/reader-d/subscriptions", json={"topic": "news"})
        subs = api.get("/api/v1/agents/reader-a/subscriptions").json()
        assert [(s["topic"], s["source"]) for s in subs] == [("news", "template")]

        ids = [
            api.post("/api/v1/topics/news/messages", json={"payload": i}).json()["id"]
            for i in range(10)
        ]
        reader_a = api.get("/api/v1/agents/reader-a").json()["id"]
        # Once every copy is acked nothing of it comes again: what was seen by then is final.
        eventually(
            lambda: all(
                api.get(f"/api/v1/messages/{i}_{reader_a}").json().get("status") == "acked"
                for i in ids
            ),
            what="reader-a's copies all acked",
        )
        assert sorted(api.get("/api/v1/agents/reader-a/state").json()["value"]["seen"]) == list(
            range(10)
        )  # once each, though reader-a has two replicas
        for echo in ("reader-b", "reader-d"):
            got = eventually(
                lambda e=echo: (
                    len(
                        api.get(f"/api/v1/agents/{e}/messages", params={"limit": 100}).json()[
                            "items"
                        ]
                    )
                    == 10
                    and api.get(f"/api/v1/agents/{e}/messages").json()["items"]
                ),
                what=f"{echo} got 10",
            )
            assert sorted(m["origin_id"] for m in got) == sorted(ids)
        assert api.get("/api/v1/agents/reader-c/state").json()["version"] == 0
        record = api.get(f"/api/v1/messages/{ids[0]}").json()
        assert (record["kind"], record["copies"]) == ("topic", 3)


def test_a_long_handler_is_not_redelivered_and_its_replica_stays_healthy(
    platform: Stack,
) -> None:
    """ack_wait is 3 s here; the handler works 8 s."""
    with platform.client() as api:
        template(api, "slow", "tests.support.sample_agents:Slow")
        running(api, "thinker", template="slow", config={"seconds": 8})
        sent = api.post(
            "/api/v1/agents/thinker/messages",
            json={"payload": "ponder", "content_type": "text/plain"},
        )
        msg_id = sent.json()["id"]

        def busy() -> bool:
            (instance,) = api.get("/api/v1/agents/thinker").json()["instances"]
            return bool(instance["busy"]) and instance["health"] == "healthy"

        eventually(busy, timeout=10, what="busy and healthy")
        record = eventually(
            lambda: (r := api.get(f"/api/v1/messages/{msg_id}").json())["status"] == "acked" and r,
            timeout=20,
            what="acked",
        )
        assert record["deliveries"] == 1


def test_large_payloads_travel_by_claim_check_and_too_large_ones_are_refused(
    platform: Stack,
) -> None:
    with platform.client() as api:
        running(api, "big-echo", template="echo")
        blob = os.urandom(3 * 1024 * 1024)
        reply = api.post(
            "/api/v1/agents/big-echo/messages",
            params={"wait": 30},
            json={
                "payload": base64.b64encode(blob).decode(),
                "content_type": "application/octet-stream",
            },
            timeout=60,
        )
        assert reply.status_code == 200, reply.text[:500]
        assert base64.b64decode(reply.json()["reply"]["payload"]) == blob
        huge = base64.b64encode(b"x" * (64 * 1024 * 1024 + 1)).decode()
        refused = api.post(
            "/api/v1/agents/big-echo/messages",
            json={"payload": huge, "content_type": "application/octet-stream"},
            timeout=60,
        )
        assert refused.status_code == 413
        assert refused.json()["code"] == "too_large"


def test_bad_messages_are_refused(platform: Stack) -> None:
    with platform.client() as api:
        running(api, "strict", template="echo")
        assert (
            api.post(
                "/api/v1/agents/strict/messages", json={"payload": 1, "content_type": "text/plain"}
            ).status_code
            == 422
        )
        assert (
            api.post(
                "/api/v1/agents/strict/messages",
                json={"payload": "%%%", "content_type": "application/octet-stream"},
            ).status_code
            == 422
        )
        assert api.post("/api/v1/topics/bad topic!/messages", json={"payload": 1}).status_code in (
            404,
            422,
        )
        assert (
            api.post(
                "/api/v1/agents/strict/messages",
                json={"payload": 1, "headers": {"Nats-Msg-Id": "x"}},
            ).status_code
            == 422
        )


def test_messages_wait_for_an_agent_that_is_not_running_yet(platform: Stack) -> None:
    with platform.client() as api:
        template(api, "patient", "cortex.sdk.builtin:Echo", max_deliveries=2)
        api.post("/api/v1/agents", json={"name": "late", "template": "patient"})
        sent = api.post("/api/v1/agents/late/messages", json={"payload": {"early": True}})
        assert sent.status_code == 202, sent.text
        assert sent.json()["agent_status"] == "created"
        msg_ids = [sent.json()["id"]]
        # Waiting for an answer the agent cannot give: said at once, the message kept.
        for wait in ({"wait": 60}, {"confirm": 60}):
            refused = api.post("/api/v1/agents/late/messages", params=wait, json={"payload": 1})
            assert refused.status_code == 409, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert problem["code"] == "conflict"
            assert problem["details"]["agent_status"] == "created"
            assert problem["detail"].startswith("agent late is created, not running: message ")
            assert problem["detail"].endswith("deploy it with: cortex agents deploy late")
            msg_ids.append(problem["details"]["message_id"])
        # Each delivered more often than max_deliveries allows, finding nobody to run it.
        eventually(
            lambda: (
                host_metric(platform, 'cortex_host_handovers_total{outcome="not_running"}') >= 3 * 3
            ),
            timeout=60,
            what="several deliveries of each message without a replica",
        )
        api.post("/api/v1/agents/late/deploy")
        for msg_id in msg_ids:
            record = eventually(
                lambda m=msg_id: (
                    (r := api.get(f"/api/v1/messages/{m}").json())["status"] == "acked" and r
                ),
                timeout=45,
                what="handled once it runs",
            )
            assert record["status"] == "acked"
            assert api.get(f"/api/v1/dlq/{msg_id}").status_code == 404


def test_outside_publishers_with_odd_or_no_message_ids_are_served(platform: Stack) -> None:
    import asyncio

    with platform.client() as api:
        view = running(api, "outside", template="echo")

    async def publish() -> list[str]:
        # Signed in as an outside publisher: sending to cortex.msg.> is all it may do.
        nc = await platform.nats_connect("publisher")
        js = nc.jetstream()
        replies = []
        for msg_id in ("order.42 *", None):
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, max_msgs=1)
            headers = {"Cortex-Content-Type": "text/plain", "Cortex-Reply-To": inbox}
            if msg_id:
                headers["Nats-Msg-Id"] = msg_id
            await js.publish(f"cortex.msg.agent.{view['id']}", b"from outside", headers=headers)
            replies.append((await sub.next_msg(timeout=15)).data.decode())
        await nc.close()
        return replies

    assert asyncio.run(publish()) == ["from outside", "from outside"]


def test_a_message_delivered_twice_at_once_is_handled_once(platform: Stack, tmp_path: Path) -> None:
    """Two deliveries of one message at the same time (a hand-over that timed out came back
    while the first still ran, or a restarted nats-server forgot the first delivery): the
    handler runs once and both are answered."""
    import asyncio

    from cortex.kernel.messages import message_headers
    from cortex.kernel.settings import load_settings
    from tests.support.sample_agents import Ledger

    records = tmp_path / "ledger"
    records.mkdir()
    with platform.client() as api:
        template(api, "slow-ledger", f"{Ledger.__module__}:Ledger", concurrency=4)
        view = running(
            api, "twice", template="slow-ledger", config={"dir": str(records), "seconds": 1.0}
        )
    subject = load_settings({}).subjects().deliver(view["id"])

    async def deliver_twice() -> list[str]:
        nc = await platform.nats_connect()
        headers = message_headers(
            msg_id="order-77", sender="test", to=view["id"], content_type="text/plain"
        )

        async def hand_over() -> str:
            """As a host hands a message over: "working" notes until the outcome."""
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.publish(subject, b"once", reply=inbox, headers=headers)
            while True:
                answer = await sub.next_msg(timeout=20)
                status = (answer.headers or {}).get("Cortex-Status", "")
                if status != "working":
                    return status

        answers = await asyncio.gather(hand_over(), hand_over())
        await nc.close()
        return answers

    assert asyncio.run(deliver_twice()) == ["ok", "ok"]
    lines = [line for p in records.glob("*.log") for line in p.read_text().splitlines()]
    assert lines == ["order-77"]
