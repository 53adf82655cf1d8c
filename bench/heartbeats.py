"""How long the registry takes to decide about one heartbeat chunk.

    .venv/bin/python bench/heartbeats.py [--replicas 10000] [--chunk 1000] [--rounds 20]

A host of `--replicas` replicas sends its heartbeat in chunks of `--chunk`; every interval the
registry decodes each chunk, notes it in its live data and decides which events it calls for.
An unchanged chunk (the usual one) must take far less than the interval. Prints JSON: the
median and best time per unchanged chunk and per chunk of new replicas, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from cortex.contracts.registry import Heartbeat, HostRegistered, InstanceRegistered, ReplicaReport
from cortex.registry.domain import HostState, fold, on_heartbeat
from cortex.registry.live import LiveData

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def replica(iid: str) -> ReplicaReport:
    return ReplicaReport(
        instance_id=iid, agent_id="a1", agent_name="name-a1", state="running", started_at=T0
    )


def chunk_bytes(first: int, size: int, chunk: int, chunks: int) -> bytes:
    beat = Heartbeat(
        host_id="h1",
        boot_id="b1",
        hostname="box",
        pid=42,
        started_at=T0,
        sent_at=T0,
        interval=2.0,
        cpu_percent=1.0,
        rss_bytes=1000,
        replicas=[replica(f"i{n:06}") for n in range(first, first + size)],
        chunk=chunk,
        chunks=chunks,
    )
    return msgspec.json.encode(beat)


def timed(decide: Callable[[], None], rounds: int) -> dict[str, float]:
    spent = []
    for _ in range(rounds):
        started = time.perf_counter()
        decide()
        spent.append(time.perf_counter() - started)
    return {
        "median_ms": round(statistics.median(spent) * 1000, 3),
        "best_ms": round(min(spent) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    events: list[tuple[object, datetime]] = [
        (HostRegistered(host_id="h1", boot_id="b1", hostname="box", pid=42, started_at=T0), T0)
    ]
    events += [
        (
            InstanceRegistered(
                instance_id=f"i{n:06}", agent_id="a1", agent_name="name-a1", started_at=T0
            ),
            T0,
        )
        for n in range(args.replicas)
    ]
    state = fold(events)
    assert isinstance(state, HostState)
    chunks = max(1, args.replicas // args.chunk)
    decoder = msgspec.json.Decoder(Heartbeat)
    live = LiveData()

    def decide(raw: bytes, expect_events: bool) -> Callable[[], None]:
        def run() -> None:
            received = decoder.decode(raw)
            live.heard(received, time.monotonic())
            assert bool(on_heartbeat(state, received)) == expect_events

        return run

    unchanged = chunk_bytes(0, args.chunk, 0, chunks)
    new = chunk_bytes(args.replicas, args.chunk, 0, chunks)
    print(
        json.dumps(
            {
                "benchmark": "heartbeats",
                "replicas_known": args.replicas,
                "replicas_per_chunk": args.chunk,
                "unchanged_chunk": timed(decide(unchanged, False), args.rounds),
                "chunk_of_new_replicas": timed(decide(new, True), args.rounds),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
