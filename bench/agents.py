"""Deploy N `echo` agents on one agent host and measure the fleet.

    .venv/bin/python bench/agents.py --agents 1000
    .venv/bin/python bench/agents.py --agents 10000

Runs `cortex up` (one host) in a temporary data dir, creates and deploys N echo agents through
the HTTP API, and prints one JSON document: time until every agent is running, the host's RSS
per 100 agents (and nats-server's), and request/reply latency p50/p99 under load, measured from
a NATS client exactly as an agent's `request` goes (inbox -> replica -> reply) and through the
gateway's `POST /agents/{id}/messages?wait=`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import httpx

from cortex.kernel.messages import send_to_agent
from cortex.kernel.settings import load_settings
from harness import TOKEN, Platform, pct, rss_of


async def create_agents(api: httpx.AsyncClient, n: int, concurrency: int) -> list[str]:
    ids: list[str] = []
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            for attempt in range(5):
                reply = await api.post(
                    "/api/v1/agents",
                    json={
                        "name": f"echo-{i:05d}",
                        "template": "echo",
                        "replicas": 1,
                        "deploy": True,
                    },
                )
                if reply.status_code == 201:
                    ids.append(reply.json()["id"])
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
            raise RuntimeError(f"create failed: {reply.status_code} {reply.text}")

    await asyncio.gather(*(one(i) for i in range(n)))
    return ids


async def wait_running(api: httpx.AsyncClient, n: int, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        page = (await api.get("/api/v1/agents", params={"status": "running", "limit": 1})).json()
        if page["total"] >= n:
            return time.perf_counter() - started
        await asyncio.sleep(0.25)
    raise RuntimeError(f"not all {n} agents running after {timeout}s")


async def nats_latency(
    platform: Platform, ids: list[str], requests: int, concurrency: int
) -> dict[str, Any]:
    nc = await platform.nats_connect()
    js = nc.jetstream()
    subjects = load_settings({}).subjects()
    latencies: list[float] = []
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            agent_id = random.choice(ids)
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, max_msgs=1)
            started = time.perf_counter()
            await send_to_agent(
                js,
                subjects,
                agent_id,
                b'{"ping":1}',
                content_type="application/json",
                sender="bench",
                reply_to=inbox,
            )
            await sub.next_msg(timeout=30)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    await nc.close()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": round(max(latencies) * 1000, 3),
        "requests_per_s": round(requests / elapsed, 1),
    }


async def http_latency(
    api: httpx.AsyncClient, ids: list[str], requests: int, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            started = time.perf_counter()
            reply = await api.post(
                f"/api/v1/agents/{random.choice(ids)}/messages",
                params={"wait": 30},
                json={"payload": {"ping": 1}},
            )
            reply.raise_for_status()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one() for _ in range(requests)))
    return {
        "requests": requests,
        "concurrency": concurrency,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
    }


async def measure(args: argparse.Namespace, platform: Platform) -> dict[str, Any]:
    host_pid, nats_pid = platform.child("cortex.host"), platform.child("nats-server")
    host_before, nats_before = rss_of(host_pid), rss_of(nats_pid)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{platform.http_port}",
        timeout=120,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as api:
        started = time.perf_counter()
        ids = await create_agents(api, args.agents, args.create_concurrency)
        created_s = time.perf_counter() - started
        running_s = await wait_running(api, args.agents, args.timeout) + created_s
        host_after, nats_after = rss_of(host_pid), rss_of(nats_pid)
        await nats_latency(platform, ids, min(500, args.requests), args.concurrency)  # warm up
        over_nats = await nats_latency(platform, ids, args.requests, args.concurrency)
        over_http = await http_latency(api, ids, args.http_requests, args.concurrency)
    per_100 = 100 / args.agents
    return {
        "benchmark": "agents",
        "agents": args.agents,
        "hosts": 1,
        "create_s": round(created_s, 2),
        "all_running_s": round(running_s, 2),
        "host_rss_mb": {
            "before": round(host_before / 2**20, 1),
            "after": round(host_after / 2**20, 1),
            "per_100_agents": round((host_after - host_before) / 2**20 * per_100, 3),
        },
        "nats_server_rss_mb": {
            "before": round(nats_before / 2**20, 1),
            "after": round(nats_after / 2**20, 1),
            "per_100_agents": round((nats_after - nats_before) / 2**20 * per_100, 3),
        },
        "request_reply_over_nats": over_nats,
        "request_reply_over_http": over_http,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--http-requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    platform = Platform(hosts=1)
    try:
        result = asyncio.run(measure(args, platform))
    finally:
        platform.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
