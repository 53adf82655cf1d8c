"""Each benchmark runs end to end on a small size and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_eventstore_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "eventstore.py"), "--events", "400"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for run in ("sqlite_synchronous_full", "sqlite_synchronous_normal"):
        figures = result["runs"][run]
        assert figures["single_appends_per_s"] > 0
        assert figures["batch_events_per_s"] > 0
        assert figures["read_all_events"] == 100 + 400


def test_agents_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "agents.py"),
            "--agents",
            "20",
            "--requests",
            "100",
            "--http-requests",
            "20",
            "--concurrency",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["agents"] == 20
    assert result["all_running_s"] > 0
    assert result["host_rss_mb"]["after"] > 0
    for path in ("request_reply_over_nats", "request_reply_over_http"):
        assert 0 < result[path]["p50_ms"] <= result[path]["p99_ms"]
