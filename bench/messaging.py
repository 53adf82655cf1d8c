"""Messaging between agents on different hosts, beside bare nats-py JetStream (the floor).

    .venv/bin/python bench/messaging.py [--latency-n 1000] [--burst 20000] [--nats-cluster 3]

Runs `cortex up` with two agent hosts, a Sender agent on one and a Receiver agent on the other
(bench/bench_agents.py), and measures one-way latency (send -> handler), request/reply latency
and sustained messages/s; then the same three on the same nats-server with bare nats-py
JetStream (a stream, a durable pull consumer, acks) in this process. With `--nats-cluster 3`
the platform runs on a three-node cluster (CORTEX_NATS_CLUSTER=3, every stream with three
replicas) and the floor's stream has three replicas on the same cluster. Prints one JSON
document with both, the ratios and the topology measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from cortex.kernel.settings import load_settings
from harness import TOKEN, Platform, pct


def summary(latencies: list[float]) -> dict[str, float]:
    return {"n": len(latencies), "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}


def deploy(api: httpx.Client, name: str, template: str, concurrency: int) -> str:
    api.post(
        "/api/v1/templates",
        json={"name": template, "handler": f"bench_agents:{name}", "concurrency": concurrency},
    )
    agent = api.post(
        "/api/v1/agents", json={"name": name.lower(), "template": template, "deploy": True}
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
        receiver_host = deploy(api, "Receiver", "bench-receiver", 64)
        sender_host = deploy(api, "Sender", "bench-sender", 1)
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


async def stream_replicas(urls: list[str]) -> int:
    """How many copies JetStream keeps of the platform's inbox stream, as it reports it."""
    nc = await nats.connect(urls)
    try:
        info = await nc.jetstream().stream_info(load_settings().subjects().messages_stream)
        return info.config.num_replicas or 1
    finally:
        await nc.close()


async def floor_figures(
    urls: list[str], replicas: int, latency_n: int, burst: int
) -> dict[str, Any]:
    """The same three measurements with nothing but nats-py and one JetStream stream, with as
    many replicas as the platform's streams."""
    nc = await nats.connect(urls)
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
    args = parser.parse_args()
    platform = Platform(hosts=2, nats_cluster=args.nats_cluster, CORTEX_SQLITE_SYNCHRONOUS="NORMAL")
    try:
        replicas = asyncio.run(stream_replicas(platform.nats_urls))
        cortex = platform_figures(args, platform)
        floor = asyncio.run(floor_figures(platform.nats_urls, replicas, args.latency_n, args.burst))
    finally:
        platform.stop()
    ratio = {
        "one_way_p50": round(cortex["one_way"]["p50_ms"] / floor["one_way"]["p50_ms"], 2),
        "one_way_p99": round(cortex["one_way"]["p99_ms"] / floor["one_way"]["p99_ms"], 2),
        "request_reply_p50": round(
            cortex["request_reply"]["p50_ms"] / floor["request_reply"]["p50_ms"], 2
        ),
        "request_reply_p99": round(
            cortex["request_reply"]["p99_ms"] / floor["request_reply"]["p99_ms"], 2
        ),
        "throughput": round(
            cortex["sustained"]["messages_per_s"] / floor["sustained"]["messages_per_s"], 3
        ),
    }
    print(
        json.dumps(
            {
                "benchmark": "messaging",
                "topology": {
                    "nats_servers": len(platform.nats_urls),
                    "stream_replicas": replicas,
                    "agent_hosts": 2,
                },
                "cortex": cortex,
                "nats_py_floor": floor,
                "cortex_over_floor": ratio,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
