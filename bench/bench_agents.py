"""Agents for bench/messaging.py; agent hosts import them from CORTEX_AGENT_PATH=bench."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cortex.sdk import Agent, Message


class Receiver(Agent):
    """Records one-way latencies (the sender's clock is the same machine's), answers pings.
    With `config.log_each`, logs a line for every one-way message and ping, as an agent that
    says what it does would."""

    async def on_start(self) -> None:
        self.latencies: list[float] = []
        self.count = 0
        self.log_each = bool(self.config.get("log_each"))

    async def on_message(self, msg: Message) -> Any:
        body = msg.json()
        kind = body["kind"]
        if self.log_each and kind != "report":
            self.log.info("received", kind=kind, message_id=msg.id)
        if kind == "oneway":
            self.latencies.append(time.time() - body["ts"])
            self.count += 1
            return None
        if kind == "ping":
            return {"pong": True}
        latencies, count = self.latencies, self.count
        self.latencies, self.count = [], 0
        return {"latencies": latencies, "count": count}


class Sender(Agent):
    """Runs a measurement against the agent named in its command."""

    async def on_message(self, msg: Message) -> Any:
        cmd = msg.json()
        to, n = cmd["to"], int(cmd["n"])
        if cmd["kind"] == "oneway":
            for _ in range(n):
                await self.send(to, {"kind": "oneway", "ts": time.time()})
                await asyncio.sleep(0.001)  # latency, not throughput: no queue builds up
            return {"sent": n}
        if cmd["kind"] == "rr":
            latencies = []
            for _ in range(n):
                started = time.perf_counter()
                await self.request(to, {"kind": "ping"}, timeout=30)
                latencies.append(time.perf_counter() - started)
            return {"latencies": latencies}
        started = time.perf_counter()
        for i in range(0, n, 200):
            await asyncio.gather(
                *(
                    self.send(to, {"kind": "oneway", "ts": time.time()})
                    for _ in range(min(200, n - i))
                )
            )
        return {"sent": n, "seconds": time.perf_counter() - started}


class StepWorker(Agent):
    """A workflow step's agent: sleeps `sleep` seconds (its own time), echoes."""

    async def on_message(self, msg: Message) -> Any:
        body = msg.json()
        await asyncio.sleep(float(body.get("sleep", 0)))
        return body
