"""API latency through the gateway over kept-alive connections.

    .venv/bin/python bench/api.py [--requests 400] [--clients 1,10,50] [--agents 50]

Runs `cortex up` (one agent host), creates `--agents` agents, then for each of three calls -
GET one agent, GET a list of 50 agents, and `/api/v1/health` (the floor of this run: no
service behind it) - and each number of concurrent clients, lets every client send its share of
`--requests` (at least 20) one after the other over its own kept-alive connection, after a few
warm-up requests. Prints per call and client
count the latency percentiles in milliseconds and the requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import TOKEN, Platform, pct

WARMUP = 5
MIN_PER_CLIENT = 20


class KeptAlive:
    """A bare HTTP/1.1 client on one kept-alive connection. The clients share two cores with
    the platform; httpx spends about half a millisecond of CPU per request of its own, which
    would measure the client more than the API."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    async def __aenter__(self) -> KeptAlive:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.writer.close()

    async def get(self, path: str) -> bytes:
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
        body = await self.reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return body


async def client_run(
    url: str, path: str, count: int, start: asyncio.Barrier
) -> tuple[list[float], float]:
    """One client: one connection, warmed up, then `count` requests in a row once every
    client is warm; the seconds each took, and when this client finished."""
    async with KeptAlive(url) as http:
        for _ in range(WARMUP):
            await http.get(path)
        await start.wait()
        took = []
        for _ in range(count):
            began = time.perf_counter()
            await http.get(path)
            took.append(time.perf_counter() - began)
        return took, time.perf_counter()


async def measure(url: str, path: str, clients: int, requests: int) -> dict[str, Any]:
    each = max(MIN_PER_CLIENT, requests // clients)
    start = asyncio.Barrier(clients + 1)
    runs = [asyncio.create_task(client_run(url, path, each, start)) for _ in range(clients)]
    await start.wait()
    began = time.perf_counter()
    done = await asyncio.gather(*runs)
    wall = max(end for _, end in done) - began
    took = [t for run, _ in done for t in run]
    return {
        "clients": clients,
        "requests": len(took),
        "p50_ms": pct(took, 0.50),
        "p90_ms": pct(took, 0.90),
        "p99_ms": pct(took, 0.99),
        "max_ms": pct(took, 1.0),
        "requests_per_s": round(len(took) / wall, 1),
    }


async def prepare(url: str, agents: int) -> str:
    """`agents` agents (echo, not deployed: the calls read the lifecycle service's read
    model); the id of one of them."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api:
        slots = asyncio.Semaphore(8)

        async def create(n: int) -> str:
            async with slots:
                made = await api.post(
                    "/api/v1/agents", json={"name": f"bench-api-{n}", "template": "echo"}
                )
                made.raise_for_status()
                return str(made.json()["id"])

        ids = await asyncio.gather(*(create(n) for n in range(agents)))
    return ids[0]


async def main_async(args: argparse.Namespace, platform: Platform) -> dict[str, Any]:
    agent_id = await prepare(platform.url, args.agents)
    calls = {
        "get_agent": f"/api/v1/agents/{agent_id}",
        "list_50_agents": "/api/v1/agents?limit=50",
        "health": "/api/v1/health",
    }
    results: dict[str, Any] = {}
    for name, path in calls.items():
        results[name] = [
            await measure(platform.url, path, clients, args.requests) for clients in args.clients
        ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per call and client count")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 10, 50],
        help="comma-separated numbers of concurrent clients",
    )
    parser.add_argument("--agents", type=int, default=50)
    args = parser.parse_args()
    platform = Platform(hosts=1, CORTEX_LOG_LEVEL="warning")
    try:
        calls = asyncio.run(main_async(args, platform))
    finally:
        platform.stop()
    print(
        json.dumps(
            {
                "benchmark": "api",
                "agents": args.agents,
                "keep_alive": True,
                "calls": calls,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
