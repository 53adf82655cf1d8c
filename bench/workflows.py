"""Workflow throughput and per-step overhead.

    .venv/bin/python bench/workflows.py [--executions 200] [--concurrency 20] [--work-ms 10]

Runs `cortex up` (one agent host), a 5-step sequential workflow whose steps each ask an agent
that works `--work-ms` milliseconds, and executes it `--executions` times, `--concurrency` at a
time. Prints executions/s and, from each execution's own timeline, the overhead per step beyond
the agent's work: (execution duration - 5 x work) / 5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime
from typing import Any

import httpx

from harness import TOKEN, Platform, pct

STEPS = 5


def template(work_ms: float) -> dict[str, Any]:
    sleep = work_ms / 1000
    steps: list[dict[str, Any]] = [
        {
            "id": "s1",
            "type": "agent",
            "agent": "bench-worker",
            "input": {"n": "${params.n}", "sleep": sleep},
        }
    ]
    for i in range(2, STEPS + 1):
        steps.append(
            {
                "id": f"s{i}",
                "type": "agent",
                "agent": "bench-worker",
                "input": {
                    "prev": f"${{steps.s{i - 1}.output.n}}",
                    "n": "${params.n}",
                    "sleep": sleep,
                },
            }
        )
    return {"name": "bench-five", "params": {"type": "object"}, "steps": steps}


async def measure(args: argparse.Namespace, platform: Platform) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=platform.url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as api:
        await api.post(
            "/api/v1/templates",
            json={"name": "bench-step", "handler": "bench_agents:StepWorker", "concurrency": 64},
        )
        await api.post(
            "/api/v1/agents",
            json={"name": "bench-worker", "template": "bench-step", "deploy": True},
        )
        while (await api.get("/api/v1/agents/bench-worker")).json()["status"] != "running":
            await asyncio.sleep(0.2)
        (
            await api.post("/api/v1/workflow-templates", json=template(args.work_ms))
        ).raise_for_status()
        workflow = (
            await api.post("/api/v1/workflows", json={"template": "bench-five", "params": {"n": 1}})
        ).json()
        slots = asyncio.Semaphore(args.concurrency)
        durations: list[float] = []

        async def one() -> None:
            async with slots:
                started = (await api.post(f"/api/v1/workflows/{workflow['id']}/execute")).json()
                while True:
                    view = (await api.get(f"/api/v1/executions/{started['id']}")).json()
                    if view["status"] != "running":
                        break
                    await asyncio.sleep(0.05)
                if view["status"] != "succeeded":
                    raise RuntimeError(json.dumps(view)[:2000])
                durations.append(
                    (
                        datetime.fromisoformat(view["finished_at"])
                        - datetime.fromisoformat(view["started_at"])
                    ).total_seconds()
                )

        await one()  # warm up
        durations.clear()
        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.executions)))
        elapsed = time.perf_counter() - began
    work = STEPS * args.work_ms / 1000
    overhead = [(d - work) / STEPS for d in durations]
    return {
        "benchmark": "workflows",
        "steps": STEPS,
        "work_per_step_ms": args.work_ms,
        "executions": args.executions,
        "concurrency": args.concurrency,
        "executions_per_s": round(args.executions / elapsed, 2),
        "execution_duration_ms": {"p50": pct(durations, 0.5), "p99": pct(durations, 0.99)},
        "overhead_per_step_ms": {
            "p50": pct(overhead, 0.5),
            "p99": pct(overhead, 0.99),
            "mean": round(statistics.mean(overhead) * 1000, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--work-ms", type=float, default=10.0)
    args = parser.parse_args()
    platform = Platform(hosts=1)
    try:
        result = asyncio.run(measure(args, platform))
    finally:
        platform.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
