"""Messaging between agents on different hosts, beside bare nats-py JetStream (the floor).

    .venv/bin/python bench/messaging.py [--latency-n 1000] [--burst 20000] [--nats-cluster 3]
                                        [--log-publish both|on|off]

Runs `cortex up` with two agent hosts, a Sender agent on one and a Receiver agent on the other
(bench/bench_agents.py), and measures one-way latency (send -> handler), request/reply latency
and sustained messages/s; then the same three on the same nats-server with bare nats-py
JetStream (a stream, a durable pull consumer, acks) in this process. With `--nats-cluster 3`
the platform runs on a three-node cluster (CORTEX_NATS_CLUSTER=3, every stream with three
replicas) and the floor's stream has three replicas on the same cluster.

Logging is on (`CORTEX_LOG_LEVEL=info`) and the Receiver logs a line for every message it
handles. With `--log-publish both` (the default) the platform runs twice, publishing those
lines to the log stream (`CORTEX_LOG_PUBLISH=true`, the default) and not (`false`), so the
cost of central logs is the difference. Prints one JSON document with the runs, the floor, the
ratios and the topology measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any, NamedTuple

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from cortex.kernel.settings import load_settings
from harness import TOKEN, Platform, pct


def summary(latencies: list[float]) -> dict[str, float]:
    return {"n": len(latencies), "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}


def deploy(
    api: httpx.Client, name: str, template: str, concurrency: int, config: dict[str, Any]
) -> str:
    api.post(
        "/api/v1/templates",
        json={"name": template, "handler": f"bench_agents:{name}", "concurrency": concurrency},
    )
    agent = api.post(
        "/api/v1/agents",
        json={"name": name.lower(), "template": template, "deploy": True, "config": config},
    ).json()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = api.get(f"/api/v1/agents/{agent['id']}").json()
        if view["status"] == "running" and view["instances"]:
            return str(view["instances"][0]["host_id"])
        time.sleep(0.2)
    raise RuntimeError(f"{name} not running")


def ask(api: httpx.Client, agent: str, body: dict[str, Any]) -> Any:
    reply = api.post(
        f"/api/v1/agents/{agent}/messages",
        params={"wait": 300},
        json={"payload": body},
        timeout=330,
    )
    reply.raise_for_status()
    body = reply.json()
    if body["reply"] is None:
        raise RuntimeError(f"{agent} did not reply: {body}")
    return body["reply"]["payload"]


def platform_figures(args: argparse.Namespace, platform: Platform) -> dict[str, Any]:
    with httpx.Client(
        base_url=platform.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as api:
        receiver_host = deploy(api, "Receiver", "bench-receiver", 64, {"log_each": True})
        sender_host = deploy(api, "Sender", "bench-sender", 1, {})
        if receiver_host == sender_host:
            raise RuntimeError("sender and receiver landed on the same host")
        ask(api, "sender", {"kind": "rr", "to": "receiver", "n": 200})  # warm up
        ask(api, "receiver", {"kind": "report"})
        ask(api, "sender", {"kind": "oneway", "to": "receiver", "n": args.latency_n})
        oneway: list[float] = []
        deadline = time.monotonic() + 60
        while len(oneway) < args.latency_n and time.monotonic() < deadline:
            oneway += ask(api, "receiver", {"kind": "report"})["latencies"]
            time.sleep(0.2)
        rr = ask(api, "sender", {"kind": "rr", "to": "receiver", "n": args.latency_n})
        started = time.perf_counter()
        ask(api, "sender", {"kind": "burst", "to": "receiver", "n": args.burst})
        received = 0
        while received < args.burst and time.perf_counter() - started < 300:
            received += ask(api, "receiver", {"kind": "report"})["count"]
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    return {
        "hosts": [sender_host, receiver_host],
        "one_way": summary(oneway),
        "request_reply": summary(rr["latencies"]),
        "sustained": {
            "messages": received,
            "seconds": round(elapsed, 2),
            "messages_per_s": round(received / elapsed, 1),
        },
    }


async def stream_replicas(platform: Platform) -> int:
    """How many copies JetStream keeps of the platform's inbox stream, as it reports it."""
    nc = await platform.nats_connect()
    try:
        info = await nc.jetstream().stream_info(load_settings().subjects().messages_stream)
        return info.config.num_replicas or 1
    finally:
        await nc.close()


async def log_lines(platform: Platform) -> int:
    """How many lines the platform's log stream holds."""
    nc = await platform.nats_connect()
    try:
        info = await nc.jetstream().stream_info(load_settings().subjects().logs_stream)
        return info.state.messages
    finally:
        await nc.close()


class Run(NamedTuple):
    cortex: dict[str, Any]
    floor: dict[str, Any] | None
    topology: dict[str, int]


def measure_platform(args: argparse.Namespace, publish: bool, floor: bool) -> Run:
    """One run of the platform, publishing its log lines or not; and, with `floor`, the floor
    on its nats-server."""
    platform = Platform(
        hosts=2,
        nats_cluster=args.nats_cluster,
        CORTEX_SQLITE_SYNCHRONOUS="NORMAL",
        CORTEX_LOG_LEVEL="info",
        CORTEX_LOG_PUBLISH=str(publish).lower(),
    )
    try:
        replicas = asyncio.run(stream_replicas(platform))
        figures = platform_figures(args, platform)
        figures["log_lines_stored"] = asyncio.run(log_lines(platform))
        measured_floor = (
            asyncio.run(floor_figures(platform, replicas, args.latency_n, args.burst))
            if floor
            else None
        )
    finally:
        platform.stop()
    topology = {
        "nats_servers": len(platform.nats_urls),
        "stream_replicas": replicas,
        "agent_hosts": 2,
    }
    return Run(figures, measured_floor, topology)


def ratios(over: dict[str, Any], under: dict[str, Any]) -> dict[str, float]:
    return {
        "one_way_p50": round(over["one_way"]["p50_ms"] / under["one_way"]["p50_ms"], 2),
        "one_way_p99": round(over["one_way"]["p99_ms"] / under["one_way"]["p99_ms"], 2),
        "request_reply_p50": round(
            over["request_reply"]["p50_ms"] / under["request_reply"]["p50_ms"], 2
        ),
        "request_reply_p99": round(
            over["request_reply"]["p99_ms"] / under["request_reply"]["p99_ms"], 2
        ),
        "throughput": round(
            over["sustained"]["messages_per_s"] / under["sustained"]["messages_per_s"], 3
        ),
    }


async def floor_figures(
    platform: Platform, replicas: int, latency_n: int, burst: int
) -> dict[str, Any]:
    """The same three measurements with nothing but nats-py and one JetStream stream, with as
    many replicas as the platform's streams."""
    nc = await platform.nats_connect()
    js = nc.jetstream()
    await js.add_stream(name="BENCH_FLOOR", subjects=["floor.>"], num_replicas=replicas)
    await js.add_consumer(
        "BENCH_FLOOR",
        ConsumerConfig(durable_name="floor", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000),
    )
    sub = await js.pull_subscribe_bind(durable="floor", stream="BENCH_FLOOR")
    oneway: list[float] = []
    consumed = 0
    stop = asyncio.Event()

    async def consume() -> None:
        nonlocal consumed
        while not stop.is_set():
            try:
                msgs = await sub.fetch(256, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in msgs:
                body = json.loads(msg.data)
                if body["kind"] == "oneway":
                    oneway.append(time.time() - body["ts"])
                    consumed += 1
                elif msg.headers and msg.headers.get("Reply-To"):
                    await nc.publish(msg.headers["Reply-To"], b'{"pong": true}')
                await msg.ack()

    consumer = asyncio.create_task(consume())
    for _ in range(latency_n):
        await js.publish("floor.oneway", json.dumps({"kind": "oneway", "ts": time.time()}).encode())
        await asyncio.sleep(0.001)
    while len(oneway) < latency_n:
        await asyncio.sleep(0.05)
    one_way = summary(oneway)
    rr: list[float] = []
    for _ in range(latency_n):
        inbox = nc.new_inbox()
        reply = await nc.subscribe(inbox, max_msgs=1)
        started = time.perf_counter()
        await js.publish("floor.ping", b'{"kind": "ping"}', headers={"Reply-To": inbox})
        await reply.next_msg(timeout=10)
        rr.append(time.perf_counter() - started)
    consumed = 0
    started = time.perf_counter()
    for i in range(0, burst, 200):
        await asyncio.gather(
            *(
                js.publish(
                    "floor.oneway", json.dumps({"kind": "oneway", "ts": time.time()}).encode()
                )
                for _ in range(min(200, burst - i))
            )
        )
    while consumed < burst:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await consumer
    await js.delete_stream("BENCH_FLOOR")
    await nc.close()
    return {
        "one_way": one_way,
        "request_reply": summary(rr),
        "sustained": {
            "messages": burst,
            "seconds": round(elapsed, 2),
            "messages_per_s": round(burst / elapsed, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-n", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument(
        "--nats-cluster",
        type=int,
        choices=(1, 3),
        default=1,
        help="nats-servers: one, or a cluster of three with every stream on all three",
    )
    parser.add_argument(
        "--log-publish",
        choices=("both", "on", "off"),
        default="both",
        help="publish log lines to the log stream (CORTEX_LOG_PUBLISH), or not, or run both",
    )
    args = parser.parse_args()
    runs = {"on": [True], "off": [False], "both": [True, False]}[args.log_publish]
    first = measure_platform(args, runs[0], floor=True)
    assert first.floor is not None
    result: dict[str, Any] = {
        "benchmark": "messaging",
        "topology": first.topology,
        "log_publish": runs[0],
        "cortex": first.cortex,
        "nats_py_floor": first.floor,
        "cortex_over_floor": ratios(first.cortex, first.floor),
    }
    if len(runs) == 2:
        without = measure_platform(args, False, floor=False).cortex
        result["cortex_without_log_publish"] = without
        # Above 1 for latencies, below 1 for throughput: what publishing the lines costs.
        result["log_publish_over_none"] = ratios(first.cortex, without)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
