"""10,000 messages in flight while nats-server and then the receiving agent host crash."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from cortex.kernel.ids import new_id
from cortex.kernel.messages import send_to_agent
from cortex.kernel.settings import load_settings
from tests.support.polling import until
from tests.support.stack import FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 10_000
AGENTS = 4
CONCURRENCY = 8


def ledger(directory: Path) -> Counter[str]:
    seen: Counter[str] = Counter()
    for path in directory.glob("*.log"):
        seen.update(line for line in path.read_text().splitlines() if line)
    return seen


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout}s")


async def inboxes_settled(stack: Stack) -> tuple[bool, dict[str, tuple[int, int, int]]]:
    """Whether no inbox partition has a message waiting or delivered and not yet acknowledged,
    and each unsettled one's (pending, ack pending, redelivered)."""
    subjects = load_settings({}).subjects()
    nc = await stack.nats_connect()
    try:
        js = nc.jetstream()
        unsettled = {}
        for partition in range(subjects.inbox_partitions):
            name = subjects.inbox_consumer(partition)
            info = await js.consumer_info(subjects.messages_stream, name)
            if info.num_pending or info.num_ack_pending:
                unsettled[name] = (
                    info.num_pending or 0,
                    info.num_ack_pending or 0,
                    info.num_redelivered or 0,
                )
        return not unsettled, unsettled
    finally:
        await nc.close()


async def publish_all(stack: Stack, targets: list[tuple[str, str]]) -> None:
    """Publish every (agent id, message id) once, retrying through outages (same ids, so a
    retry JetStream already had is dropped as a duplicate)."""
    nc = await stack.nats_connect(max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    subjects = load_settings({}).subjects()

    async def one(agent_id: str, msg_id: str) -> None:
        for _ in range(100):
            try:
                await send_to_agent(
                    js,
                    subjects,
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

    for i in range(0, len(targets), 500):
        await asyncio.gather(*(one(a, m) for a, m in targets[i : i + 500]))
    await nc.close()


def test_nothing_lost_and_nothing_handled_twice_through_crashes(tmp_path: Path) -> None:
    records = tmp_path / "ledger"
    records.mkdir()
    stack = Stack(
        tmp_path / "stack", CORTEX_AGENT_PATH=str(REPO), CORTEX_ACK_WAIT="4", **FAST_HEALTH
    ).start()
    try:
        with stack.client() as api:
            api.post(
                "/api/v1/templates",
                json={
                    "name": "ledger",
                    "handler": "tests.support.sample_agents:Ledger",
                    "concurrency": CONCURRENCY,
                    "max_deliveries": 50,
                },
            )
            ids = []
            for i in range(AGENTS):
                created = api.post(
                    "/api/v1/agents",
                    json={
                        "name": f"ledger-{i}",
                        "template": "ledger",
                        "deploy": True,
                        "config": {"dir": str(records), "seconds": 0.01},
                    },
                )
                ids.append(created.json()["id"])
            wait_for(
                lambda: (
                    api.get("/api/v1/agents", params={"status": "running"}).json()["total"]
                    == AGENTS
                ),
                30,
                "ledgers running",
            )

        targets = [(ids[n % AGENTS], new_id()) for n in range(MESSAGES)]
        asyncio.run(publish_all(stack, targets))

        wait_for(lambda: sum(ledger(records).values()) >= 2_000, 60, "2,000 handled")
        os.kill(stack.child_pid("nats-server"), signal.SIGKILL)
        wait_for(lambda: "nats exited" in stack.output, 10, "nats-server restarted")

        wait_for(lambda: sum(ledger(records).values()) >= 5_000, 90, "5,000 handled")
        host = stack.child_pid("cortex.host")
        os.kill(host, signal.SIGKILL)
        wait_for(lambda: "host-1 exited" in stack.output, 10, "the host restarted")

        expected = {m for _, m in targets}
        wait_for(lambda: expected <= set(ledger(records)), 180, "every message handled")
        # Nothing can come again once no inbox consumer holds a message unacknowledged.
        until(
            lambda: asyncio.run(inboxes_settled(stack)),
            "every inbox acknowledged (pending, ack pending, redelivered)",
            timeout=60,
        )
        seen = ledger(records)
        assert expected - set(seen) == set(), "lost messages"
        assert set(seen) == expected
        twice = {m for m, n in seen.items() if n > 1}
        # The one repeat effectively-once cannot rule out: a handler had finished (its line is
        # written) when the SIGKILL came, a few microseconds before the host recorded it. Only
        # the killed host's last in-flight messages can be such; anything else is a bug.
        killed_last = (records / f"{host}.log").read_text().split()[-AGENTS * CONCURRENCY :]
        assert twice <= set(killed_last), f"{len(twice - set(killed_last))} handled twice"
    finally:
        stack.stop()
