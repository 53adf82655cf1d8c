"""Two replicas of every service: how far one replica's read models trail the other's writes.

    .venv/bin/python bench/replicas.py [--agents 500] [--concurrency 8] [--nats-cluster 1|3]

Runs `cortex up` with CORTEX_REPLICAS=2 and creates `--agents` agents through the gateway,
`--concurrency` at a time. Right after each create's reply it asks for the agent by id; the
queue group sends that GET to either lifecycle replica, so about half of them land on the
replica that did not make the agent. Prints how many of those GETs answered 200 and their
latency, and the lag between replicas: from an event's append to its application in the
other replica's read models (`cortex_projection_lag_seconds{trigger="follow"}` of every
lifecycle replica, read from their /metrics; quantiles from the histogram's buckets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

import httpx

from harness import TOKEN, Platform, pct

LAG = re.compile(
    r'^cortex_projection_lag_seconds_bucket\{le="(?P<le>[^"]+)",trigger="follow"\} (?P<n>\S+)$'
)


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile in milliseconds from cumulative histogram buckets (upper bound of the
    bucket it falls in, interpolated linearly inside it)."""
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return None
    want = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= want:
            if bound == float("inf"):
                return round(lower_bound * 1000, 3)
            inside = (want - lower_count) / (count - lower_count) if count > lower_count else 1
            return round((lower_bound + (bound - lower_bound) * inside) * 1000, 3)
        lower_bound, lower_count = bound, count
    return None


async def lifecycle_admins(api: httpx.AsyncClient, replicas: int) -> list[str]:
    """The lifecycle replicas' admin URLs. `/api/v1/status` lists the replicas that answered
    its discovery in time; one still busy with the load just sent may answer too late, so ask
    again until every replica is there (or 10 s have passed)."""
    admins: list[str] = []
    for _ in range(20):
        services = (await api.get("/api/v1/status")).json()["services"]
        admins = [
            i["metadata"]["admin_url"]
            for s in services
            if s["name"] == "lifecycle"
            for i in s["instances"]
        ]
        if len(admins) >= replicas:
            break
        await asyncio.sleep(0.5)
    return admins


async def follow_lag(api: httpx.AsyncClient, replicas: int = 2) -> dict[str, Any]:
    admins = await lifecycle_admins(api, replicas)
    buckets: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=10) as plain:
        for admin in admins:
            for line in (await plain.get(f"{admin}/metrics")).text.splitlines():
                found = LAG.match(line)
                if found:
                    bound = float(found["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + float(found["n"])
    return {
        "replicas": len(admins),
        "events": int(buckets.get(float("inf"), 0)),
        "p50_ms": quantile(buckets, 0.50),
        "p99_ms": quantile(buckets, 0.99),
    }


async def measure(args: argparse.Namespace, platform: Platform) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=platform.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as api:
        slots = asyncio.Semaphore(args.concurrency)
        gets: list[float] = []
        codes: dict[int, int] = {}

        async def one(n: int) -> None:
            async with slots:
                made = await api.post(
                    "/api/v1/agents", json={"name": f"lag-{n}", "template": "echo"}
                )
                made.raise_for_status()
                began = time.perf_counter()
                got = await api.get(f"/api/v1/agents/{made.json()['id']}")
                gets.append(time.perf_counter() - began)
                codes[got.status_code] = codes.get(got.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(args.agents)))
        took = time.perf_counter() - began
        return {
            "get_after_create": {
                "requests": len(gets),
                "status_codes": {str(k): v for k, v in sorted(codes.items())},
                "p50_ms": pct(gets, 0.50),
                "p99_ms": pct(gets, 0.99),
            },
            "creates_per_s": round(args.agents / took, 1),
            "lag_between_replicas": await follow_lag(api),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--nats-cluster", type=int, choices=(1, 3), default=1)
    args = parser.parse_args()
    platform = Platform(hosts=1, CORTEX_REPLICAS="2", CORTEX_NATS_CLUSTER=str(args.nats_cluster))
    try:
        result = asyncio.run(measure(args, platform))
    finally:
        platform.stop()
    print(
        json.dumps(
            {
                "benchmark": "replicas",
                "agents": args.agents,
                "concurrency": args.concurrency,
                "nats_cluster": args.nats_cluster,
                **result,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
