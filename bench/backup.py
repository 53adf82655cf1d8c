"""Backup and restore of a loaded platform: archive size and times.

    .venv/bin/python bench/backup.py --agents 10000 --events 100000

Runs `cortex up`, creates N agents through the API (created, not deployed), writes agent
state until the event stores hold `--events` events in all, then times `cortex admin backup`,
`cortex admin restore` into a new data dir, and `cortex up` on it until it is up (its services
rebuild their read models from the restored events), and checks the restored platform lists
every agent. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from harness import CORTEX, TOKEN, Platform, free_nats_port


async def load(url: str, agents: int, events: int, concurrency: int) -> dict[str, float]:
    slots = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api:

        async def create(i: int) -> None:
            async with slots:
                body = {"name": f"agent-{i:05d}", "template": "echo"}
                (await api.post("/api/v1/agents", json=body)).raise_for_status()

        async def write(i: int) -> None:
            async with slots:
                ref = f"agent-{i % agents:05d}"
                reply = await api.put(f"/api/v1/agents/{ref}/state", json={"n": i})
                reply.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(agents)))
        created = time.perf_counter() - began
        stored = await stored_events(api)
        writes = max(0, events - stored)
        began = time.perf_counter()
        await asyncio.gather(*(write(i) for i in range(writes)))
        return {"create_s": created, "state_writes": writes, "write_s": time.perf_counter() - began}


async def stored_events(api: httpx.AsyncClient) -> int:
    """Events the services have stored, as relayed to `CORTEX_EVENTS` (`/api/v1/status`)."""
    await asyncio.sleep(2)  # the relays publish within a second or so
    streams = (await api.get("/api/v1/status")).json()["nats"]["streams"]
    return sum(int(s["messages"]) for s in streams if s["name"].endswith("_EVENTS"))


def cortex(env: dict[str, str], *args: str) -> tuple[str, float]:
    began = time.perf_counter()
    done = subprocess.run(
        [CORTEX, *args], env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cortex {' '.join(args)}: {done.stderr[-3000:]}")
    return done.stdout, time.perf_counter() - began


def run(args: argparse.Namespace) -> dict[str, Any]:
    first = Platform(hosts=0, CORTEX_SQLITE_SYNCHRONOUS="NORMAL")
    scratch = Path(tempfile.mkdtemp(prefix="cortex-bench-backup-"))
    archive = scratch / "cortex.backup"
    second: Platform | None = None
    try:
        loaded = asyncio.run(load(first.url, args.agents, args.events, args.concurrency))
        env = {**os.environ, "CORTEX_DATA_DIR": str(first.root / "data"),
               "CORTEX_NATS_PORT": str(first.nats_port)}  # fmt: skip
        env.pop("CORTEX_NATS_URL", None)
        said, backup_s = cortex(env, "admin", "backup", "--quiet", str(archive))
        counted = re.search(r"(\d+) events", said)
        if counted is None:
            raise RuntimeError(f"cortex admin backup did not say how many events: {said}")
        events = int(counted[1])
        first.stop()

        data = scratch / "restored"
        data.mkdir()
        shutil.copy(first.root / "data" / "secrets.key", data / "secrets.key")
        restore_env = {
            **env,
            "CORTEX_DATA_DIR": str(data),
            "CORTEX_NATS_PORT": str(free_nats_port(1)),
        }
        _, restore_s = cortex(restore_env, "admin", "restore", "--quiet", str(archive))

        began = time.perf_counter()
        second = Platform(hosts=0, CORTEX_DATA_DIR=str(data))
        up_s = time.perf_counter() - began
        with httpx.Client(
            base_url=second.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as api:
            listed = api.get("/api/v1/agents", params={"limit": 1}).json()["total"]
        return {
            "agents": args.agents,
            "events": events,
            "load": {k: round(v, 1) for k, v in loaded.items()},
            "archive_bytes": archive.stat().st_size,
            "archive_mb": round(archive.stat().st_size / 1e6, 1),
            "backup_s": round(backup_s, 2),
            "restore_s": round(restore_s, 2),
            "restored_platform_up_s": round(up_s, 1),
            "restored_agents_listed": listed,
        }
    finally:
        first.stop()
        if second is not None:
            second.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
