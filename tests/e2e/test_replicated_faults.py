"""The production shape on one machine (two replicas of every service, a three-node NATS
cluster) with 10,000 messages and 50 workflow executions in flight, while a nats-server node
and then one replica of each service are SIGKILLed."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from cortex.kernel.ids import new_id
from cortex.kernel.messages import send_to_agent
from cortex.kernel.settings import load_settings
from tests.e2e.test_messaging_faults import inboxes_settled, ledger
from tests.support.polling import eventually, finished_execution, until
from tests.support.stack import FAST_HEALTH, Stack

# Its own waits (up to 240 s for the messages) say what is missing; the suite-wide 300 s
# timeout would cut them off first.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 10_000
EXECUTIONS = 50
AGENTS = 4
SUBJECTS = load_settings({}).subjects()


async def publish_all(stack: Stack, targets: list[tuple[str, str]]) -> None:
    """Every (agent id, message id) once, retried with the same id through outages."""
    nc = await stack.nats_connect(max_reconnect_attempts=-1)
    js = nc.jetstream()

    async def one(agent_id: str, msg_id: str) -> None:
        for _ in range(100):
            try:
                await send_to_agent(
                    js,
                    SUBJECTS,
                    agent_id,
                    msg_id.encode(),
                    content_type="text/plain",
                    sender="fault-test",
                    msg_id=msg_id,
                )
                return
            except Exception:
                await asyncio.sleep(0.2)
        raise AssertionError(f"could not publish {msg_id}")

    try:
        for i in range(0, len(targets), 500):
            await asyncio.gather(*(one(a, m) for a, m in targets[i : i + 500]))
    finally:
        await nc.close()


def missing_by_agent(targets: list[tuple[str, str]], seen: Counter[str]) -> dict[str, int]:
    """How many messages each agent has not handled yet: says which inbox is stuck."""
    return dict(Counter(agent for agent, m in targets if m not in seen))


async def consumer_states(stack: Stack) -> list[object]:
    """Each inbox partition's consumer as the cluster sees it, and the inbox stream's state:
    where a message that is not handled stopped."""
    nc = await stack.nats_connect()
    try:
        js = nc.jetstream()
        states: list[object] = []
        for partition in range(SUBJECTS.inbox_partitions):
            info = await js.consumer_info(
                SUBJECTS.messages_stream, SUBJECTS.inbox_consumer(partition)
            )
            states.append(
                {
                    "partition": partition,
                    "pending": info.num_pending,
                    "ack_pending": info.num_ack_pending,
                    "redelivered": info.num_redelivered,
                    "waiting_pulls": info.num_waiting,
                    "delivered": info.delivered,
                    "ack_floor": info.ack_floor,
                    "cluster": info.cluster,
                }
            )
        states.append((await js.stream_info(SUBJECTS.messages_stream)).state)
        return states
    finally:
        await nc.close()


def placement(view: dict[str, object]) -> dict[str, object]:
    """An agent's status and its instances' hosts and states: says why nothing handles it."""
    instances = view.get("instances")
    return {
        "agent": view.get("name"),
        "status": view.get("status"),
        "instances": [
            {k: i.get(k) for k in ("host_id", "state", "health", "inflight", "busy", "handled")}
            for i in (instances if isinstance(instances, list) else [])
        ],
    }


async def msgs_leader(stack: Stack) -> str:
    """The server leading the inbox stream: the node whose loss matters most."""
    nc = await stack.nats_connect()
    try:
        info = await nc.jetstream().stream_info(SUBJECTS.messages_stream)
        assert info.cluster is not None
        assert info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


def test_nothing_lost_or_doubled_when_a_node_and_a_replica_of_each_service_die(
    tmp_path: Path,
) -> None:
    records = tmp_path / "ledger"
    records.mkdir()
    stack = Stack(
        tmp_path / "stack",
        CORTEX_REPLICAS="2",
        CORTEX_NATS_CLUSTER="3",
        CORTEX_HOSTS="2",
        CORTEX_AGENT_PATH=str(REPO),
        CORTEX_ACK_WAIT="4",
        **FAST_HEALTH,
    ).start()
    try:
        with stack.client() as api:
            api.post(
                "/api/v1/templates",
                json={
                    "name": "ledger",
                    "handler": "tests.support.sample_agents:Ledger",
                    "concurrency": 8,
                    "max_deliveries": 50,
                },
            )
            api.post(
                "/api/v1/templates",
                json={
                    "name": "stepper",
                    "handler": "tests.support.sample_agents:StepWorker",
                    "concurrency": 16,
                },
            )
            ids = [
                api.post(
                    "/api/v1/agents",
                    json={
                        "name": f"ledger-{i}",
                        "template": "ledger",
                        "deploy": True,
                        "config": {"dir": str(records), "seconds": 0.01},
                    },
                ).json()["id"]
                for i in range(AGENTS)
            ]
            api.post(
                "/api/v1/agents",
                json={"name": "stepper-1", "template": "stepper", "replicas": 2, "deploy": True},
            )
            eventually(
                lambda: (
                    api.get("/api/v1/agents", params={"status": "running"}).json()["total"]
                    == AGENTS + 1
                ),
                what="agents running",
            )
            # A reply lost with the node its requester was connected to is what a step's retry
            # is for, as in any workflow that must survive infrastructure failures.
            steps = [
                {
                    "id": f"s{n}",
                    "type": "agent",
                    "agent": "stepper-1",
                    "input": {"sleep": 0.1},
                    "timeout": "20s",
                    "retry": {"attempts": 3, "backoff": "1s"},
                }
                for n in range(4)
            ]
            assert api.post(
                "/api/v1/workflow-templates", json={"name": "four-steps", "steps": steps}
            ).status_code in (200, 201)
            workflow = api.post("/api/v1/workflows", json={"template": "four-steps"}).json()["id"]
            executions = [
                api.post(f"/api/v1/workflows/{workflow}/execute").json()["id"]
                for _ in range(EXECUTIONS)
            ]

            targets = [(ids[n % AGENTS], new_id()) for n in range(MESSAGES)]
            asyncio.run(publish_all(stack, targets[: MESSAGES // 2]))
            leader = asyncio.run(msgs_leader(stack))
            node = f"nats-{leader.rsplit('n', 1)[-1]}"
            stack.kill(node)
            asyncio.run(publish_all(stack, targets[MESSAGES // 2 :]))
            eventually(
                lambda: sum(ledger(records).values()) >= MESSAGES // 2,
                timeout=90,
                what="half the messages handled",
            )
            for service in ("registry", "lifecycle", "messaging", "workflow"):
                stack.kill(f"{service}-1")

            def unhandled() -> tuple[bool, object]:
                seen = ledger(records)
                missing = [m for _, m in targets if m not in seen]
                if not missing:
                    return True, None
                if len(missing) > 5:
                    # Many left: where the stuck agents' replicas are, by the registry's view.
                    stuck = missing_by_agent(targets, seen)
                    return False, (
                        [
                            (n, placement(api.get(f"/api/v1/agents/{a}").json()))
                            for a, n in stuck.items()
                        ],
                        asyncio.run(consumer_states(stack)),
                    )
                # A few stragglers: what the messaging service knows of each says where it is.
                return False, (
                    [api.get(f"/api/v1/messages/{m}").json() for m in missing],
                    asyncio.run(consumer_states(stack)),
                )

            until(unhandled, "every message handled (unhandled per agent)", timeout=240)
            views = [finished_execution(api, e, timeout=180) for e in executions]
            statuses = Counter(v["status"] for v in views)
            errors = Counter(v["error"] for v in views if v["error"])
            assert statuses == {"succeeded": EXECUTIONS}, errors

            until(
                lambda: asyncio.run(inboxes_settled(stack)),
                "every inbox acknowledged (pending, ack pending, redelivered)",
                timeout=60,
            )
            seen = ledger(records)
            assert set(seen) == {m for _, m in targets}, "lost messages"
            twice = {m for m, n in seen.items() if n > 1}
            assert twice == set(), f"{len(twice)} messages handled more than once"

            # Every agent once, running with the replicas it wants and no more.
            def settled() -> bool:
                agents = api.get("/api/v1/agents", params={"limit": 1000}).json()["items"]
                names = sorted(a["name"] for a in agents)
                return names == sorted(
                    [*(f"ledger-{i}" for i in range(AGENTS)), "stepper-1"]
                ) and all(
                    a["status"] == "running"
                    and a["ready_replicas"] == a["replicas"]
                    and len(api.get(f"/api/v1/agents/{a['id']}").json()["instances"])
                    == a["replicas"]
                    for a in agents
                )

            eventually(settled, timeout=60, what="every agent once, no replica doubled")
    finally:
        stack.stop()
