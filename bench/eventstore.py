"""Event store throughput: appends/s (single events and batches of 100) and read_all events/s.

    .venv/bin/python bench/eventstore.py [--store sqlite|URL] [--events N]

Prints one JSON document. SQLite is measured with synchronous=FULL (the default: an append
survives power loss) and NORMAL (survives a process crash); an `arangodb://` URL measures that
adapter instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import sys
import tempfile
import time
from typing import Any

import msgspec

from cortex.kernel.store import EventStore, NewEvent, open_store

PAYLOAD = msgspec.json.encode(
    {"agent": "worker-17", "replicas": 3, "labels": {"team": "ml"}, "note": "x" * 200}
)


def events(n: int) -> list[NewEvent]:
    return [NewEvent(type="agent.scaled", stream_type="agent", data=PAYLOAD) for _ in range(n)]


async def measure(store: EventStore, total: int) -> dict[str, Any]:
    singles = total // 4
    started = time.perf_counter()
    for i in range(singles):
        await store.append(f"agent-{i % 500}", events(1), None)
    single_s = time.perf_counter() - started

    batches = total // 100
    started = time.perf_counter()
    for i in range(batches):
        await store.append(f"batch-{i}", events(100), 0)
    batch_s = time.perf_counter() - started

    started = time.perf_counter()
    read = after = 0
    while page := await store.read_all(after, 1000):
        read += len(page)
        after = page[-1].position
    read_s = time.perf_counter() - started
    return {
        "single_appends": singles,
        "single_appends_per_s": round(singles / single_s),
        "single_append_ms_mean": round(single_s / singles * 1000, 3),
        "batch_appends": batches,
        "batch_size": 100,
        "batch_events_per_s": round(batches * 100 / batch_s),
        "batches_per_s": round(batches / batch_s, 1),
        "read_all_events": read,
        "read_all_events_per_s": round(read / read_s),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="sqlite", help="sqlite, or an arangodb:// URL")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "eventstore",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "payload_bytes": len(PAYLOAD),
        "runs": {},
    }
    if args.store == "sqlite":
        for mode in ("FULL", "NORMAL"):
            with tempfile.TemporaryDirectory() as tmp:
                store = await open_store(f"sqlite:///{tmp}", "bench", sqlite_synchronous=mode)
                try:
                    results["runs"][f"sqlite_synchronous_{mode.lower()}"] = await measure(
                        store, args.events
                    )
                finally:
                    await store.close()
    else:
        store = await open_store(args.store, "bench" + secrets.token_hex(3))
        try:
            results["runs"][store.kind] = await measure(store, args.events)
        finally:
            await store.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
