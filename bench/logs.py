"""Publishing log lines, and searching them through the API over a full log stream.

    .venv/bin/python bench/logs.py [--lines 1000000] [--requests 50] [--publish-lines 20000]

First, on the platform's nats-server and a scratch stream, the CPU this process spends per line
to publish `--publish-lines` lines three ways: a core NATS publish (what every process does), a
JetStream publish awaiting each acknowledgement, and JetStream publishes awaited 256 at a time.

Then it runs `cortex up` (one agent host, `CORTEX_LOGS_MAX_BYTES` 1 GiB) and publishes `--lines`
synthetic log lines into it the way every process publishes its own (core NATS on
`cortex.log.<service>.<level>`): six services, mostly `info`, half of them about one of
10,000 agents, a fifth about one of 50,000 executions, a correlation id per five lines, a
tenth with an error text. It measures how fast the stream stores them and the messaging
service indexes them, then, for each of a few searches, sends `--requests` of them one after
the other over a kept-alive connection to `GET /api/v1/logs` (100 lines a page) and prints
the latency percentiles in milliseconds, with the size of the stream and of the index, as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec

from api import KeptAlive
from cortex.kernel.settings import load_settings
from harness import Platform, pct, rss_of

SERVICES = ("gateway", "registry", "lifecycle", "messaging", "workflow", "host")
LEVELS = ("debug",) * 2 + ("info",) * 85 + ("warning",) * 10 + ("error",) * 3
EVENTS = (
    "service started",
    "agent status changed",
    "handler failed",
    "message delivered",
    "reply not sent",
    "execution succeeded",
    "execution failed",
    "step failed",
    "nats reconnected",
    "reconciliation skipped",
    "replica failed to start",
    "lease taken; starting its work",
    "host did not take replicas",
    "request served",
    "order processed",
    "cache miss",
)
CHUNK = 20_000
NEEDLE = "needle-4f1c9e"
"""In exactly one line: a text search that finds one line among all."""


def ident(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


class Corpus:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.agents = [ident(self.rng) for _ in range(10_000)]
        self.executions = [ident(self.rng) for _ in range(50_000)]
        self.correlation = ident(self.rng)
        self.agent = self.execution = ""
        """The last agent and execution a line was about: searches that find something."""

    def line(self, n: int, total: int) -> tuple[str, str, bytes]:
        rng = self.rng
        if n % 5 == 0:
            self.correlation = ident(rng)
        service, level = rng.choice(SERVICES), rng.choice(LEVELS)
        line: dict[str, Any] = {
            "event": rng.choice(EVENTS),
            "service": service,
            "level": level,
            "timestamp": datetime.now(UTC).isoformat(),
            "correlation_id": self.correlation,
        }
        if rng.random() < 0.5:
            agent = rng.randrange(len(self.agents))
            self.agent = self.agents[agent]
            line |= {
                "agent_id": self.agent,
                "agent_name": f"agent-{agent}",
                "instance_id": ident(rng),
            }
        if rng.random() < 0.2:
            self.execution = line["execution_id"] = rng.choice(self.executions)
        if rng.random() < 0.1:
            upstream = rng.choice(("billing", "search", "inventory"))
            line["error"] = (
                f"TimeoutError: upstream {upstream} did not answer after {rng.randrange(1, 30)}s"
            )
        if n == total // 2:
            line["error"] = f"the one line with {NEEDLE}"
        return service, level, msgspec.json.encode(line)


async def store(platform: Platform, lines: int, corpus: Corpus) -> dict[str, Any]:
    """Publish every line, a chunk at a time, each chunk once the stream has stored the last."""
    subjects = load_settings({}).subjects()
    nc = await platform.nats_connect()
    js = nc.jetstream()
    started = time.perf_counter()
    published = 0
    while published < lines:
        for n in range(published, min(lines, published + CHUNK)):
            service, level, data = corpus.line(n, lines)
            await nc.publish(subjects.log(service, level), data)
        published = min(lines, published + CHUNK)
        await nc.flush()
        while (await js.stream_info(subjects.logs_stream)).state.messages < published:
            await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    info = (await js.stream_info(subjects.logs_stream)).state
    await nc.close()
    return {
        "lines": info.messages,
        "bytes": info.bytes,
        "seconds": round(seconds, 1),
        "lines_per_s": round(lines / seconds),
        "last_seq": info.last_seq,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def publish_cost(platform: Platform, lines: int, corpus: Corpus) -> dict[str, Any]:
    """Microseconds of this process's CPU per line, for each way of publishing."""
    nc = await platform.nats_connect()
    js = nc.jetstream()
    await js.add_stream(name="BENCH_LOG_PUBLISH", subjects=["benchlog.>"])
    data = [corpus.line(n, lines)[2] for n in range(lines)]

    async def core() -> None:
        for line in data:
            await nc.publish("benchlog.host.info", line)
        await nc.flush()

    async def acked_each() -> None:
        for line in data:
            await js.publish("benchlog.host.info", line)

    async def acked_256() -> None:
        for i in range(0, lines, 256):
            await asyncio.gather(*(js.publish("benchlog.host.info", x) for x in data[i : i + 256]))

    figures: dict[str, Any] = {"lines": lines}
    for name, way in (("core", core), ("jetstream_each", acked_each), ("jetstream_256", acked_256)):
        await js.purge_stream("BENCH_LOG_PUBLISH")
        began = cpu_seconds()
        await way()
        figures[f"{name}_cpu_us_per_line"] = round((cpu_seconds() - began) / lines * 1e6, 1)
        # A core publish is stored a moment after the server took it: every line must be.
        deadline = time.monotonic() + 10
        while (await js.stream_info("BENCH_LOG_PUBLISH")).state.messages < lines:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: lines were not stored")
            await asyncio.sleep(0.05)
    await js.delete_stream("BENCH_LOG_PUBLISH")
    await nc.close()
    return figures


async def indexed(client: KeptAlive, last_seq: int, started: float) -> float:
    """Seconds from `started` until a search is answered as of `last_seq` (the index has
    every line)."""
    while True:
        try:
            page = json.loads(await client.get("/api/v1/logs?limit=1"))
            if page["last_seq"] >= last_seq:
                return time.perf_counter() - started
        except RuntimeError:  # 503: the index is behind the stream; it says so
            pass
        await asyncio.sleep(0.5)


async def searches(
    client: KeptAlive, corpus: Corpus, lines: int, requests: int
) -> dict[str, dict[str, Any]]:
    middle = json.loads(await client.get(f"/api/v1/logs?limit=1&before={lines // 2}"))
    at = datetime.fromisoformat(middle["items"][0]["stored_at"])
    window = {"since": at.isoformat(), "until": (at + timedelta(seconds=1)).isoformat()}
    cases: dict[str, dict[str, Any]] = {
        "newest": {},
        "service": {"service": "workflow"},
        "level_error": {"level": "error"},
        "agent": {"agent": corpus.agent},
        "execution": {"execution": corpus.execution},
        "correlation": {"correlation": corpus.correlation},
        "text_common": {"text": "timeout"},
        "text_one_line": {"text": NEEDLE},
        "text_none": {"text": "zebra crossing"},
        "service_level_text": {"service": "host", "level": "warning", "text": "billing"},
        "time_one_second": window,
        "page_in_the_middle": {"before": str(lines // 2)},
    }
    results: dict[str, dict[str, Any]] = {}
    for name, params in cases.items():
        path = f"/api/v1/logs?{urlencode({**params, 'limit': 100})}"
        found = len(json.loads(await client.get(path))["items"])  # warm-up, and what it finds
        times: list[float] = []
        for _ in range(requests):
            began = time.perf_counter()
            await client.get(path)
            times.append(time.perf_counter() - began)
        results[name] = {
            "params": params,
            "lines_found": found,
            "p50_ms": pct(times, 0.5),
            "p99_ms": pct(times, 0.99),
            "max_ms": round(max(times) * 1000, 3),
        }
    return results


def index_bytes(platform: Platform) -> int:
    """The size of the messaging service's index files (the database and its WAL)."""
    files = Path(platform.root, "data", "logindex").glob("*.sqlite3*")
    return sum(path.stat().st_size for path in files)


async def measure(platform: Platform, args: argparse.Namespace) -> dict[str, Any]:
    corpus = Corpus()
    publishing = await publish_cost(platform, args.publish_lines, Corpus(seed=1))
    started = time.perf_counter()
    stored = await store(platform, args.lines, corpus)
    async with KeptAlive(platform.url) as client:
        index_seconds = await indexed(client, stored["last_seq"], started)
        figures = await searches(client, corpus, args.lines, args.requests)
    return {
        "benchmark": "logs",
        "publishing": publishing,
        "stream": stored,
        "indexed": {
            "seconds_from_first_publish": round(index_seconds, 1),
            "lines_per_s": round(args.lines / index_seconds),
            "index_bytes": index_bytes(platform),
            "messaging_rss_mb": round(rss_of(platform.child("cortex.messaging")) / 2**20, 1),
        },
        "requests_per_search": args.requests,
        "searches": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--publish-lines", type=int, default=20_000)
    args = parser.parse_args()
    # The platform's own lines (a warning on a loaded machine) stay out of the stream: it
    # holds exactly the lines measured.
    platform = Platform(hosts=1, CORTEX_LOGS_MAX_BYTES=str(1 << 30), CORTEX_LOG_PUBLISH="false")
    try:
        result = asyncio.run(measure(platform, args))
    finally:
        platform.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
