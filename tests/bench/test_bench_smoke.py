"""Each benchmark runs end to end on a small size and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run a benchmark as a user would; what it printed, as JSON."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_eventstore_benchmark_prints_its_figures() -> None:
    result = run_bench("eventstore.py", "--events", "400", timeout=120)
    for run in ("sqlite_synchronous_full", "sqlite_synchronous_normal"):
        figures = result["runs"][run]
        assert figures["single_appends_per_s"] > 0
        assert figures["batch_events_per_s"] > 0
        assert figures["read_all_events"] == 100 + 400


def test_agents_benchmark_prints_its_figures() -> None:
    result = run_bench(
        "agents.py",
        "--agents",
        "20",
        "--requests",
        "100",
        "--http-requests",
        "20",
        "--concurrency",
        "5",
        timeout=300,
    )
    assert result["agents"] == 20
    assert result["all_running_s"] > 0
    assert result["host_rss_mb"]["after"] > 0
    for path in ("request_reply_over_nats", "request_reply_over_http"):
        assert 0 < result[path]["p50_ms"] <= result[path]["p99_ms"]


def test_messaging_benchmark_prints_its_figures_beside_the_floor_with_and_without_logs() -> None:
    result = run_bench("messaging.py", "--latency-n", "50", "--burst", "200", timeout=600)
    assert result["cortex"]["hosts"][0] != result["cortex"]["hosts"][1]
    for side in ("cortex", "cortex_without_log_publish", "nats_py_floor"):
        assert result[side]["one_way"]["n"] == 50
        assert result[side]["sustained"]["messages"] == 200
    assert result["cortex_over_floor"]["throughput"] > 0
    assert result["log_publish_over_none"]["throughput"] > 0
    # The receiver logs a line per message: stored only when the platform publishes them.
    assert result["cortex"]["log_lines_stored"] > 200
    assert result["cortex_without_log_publish"]["log_lines_stored"] == 0


def test_logs_benchmark_prints_search_latencies_over_the_stored_lines() -> None:
    result = run_bench(
        "logs.py", "--lines", "5000", "--requests", "3", "--publish-lines", "500", timeout=300
    )
    assert result["publishing"]["core_cpu_us_per_line"] > 0
    assert result["stream"]["lines"] == 5000
    assert result["indexed"]["index_bytes"] > 0
    searches = result["searches"]
    assert searches["text_one_line"]["lines_found"] == 1
    assert searches["text_none"]["lines_found"] == 0
    assert searches["newest"]["lines_found"] == 100
    for figures in searches.values():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_workflow_benchmark_prints_throughput_and_overhead_per_step() -> None:
    result = run_bench("workflows.py", "--executions", "6", "--concurrency", "3", timeout=300)
    assert result["steps"] == 5
    assert result["executions"] == 6
    assert result["executions_per_s"] > 0
    durations = result["execution_duration_ms"]
    # Each execution waits at least for its five agents' own work.
    assert 5 * result["work_per_step_ms"] <= durations["p50"] <= durations["p99"]
    assert result["overhead_per_step_ms"]["p50"] > 0


def test_heartbeat_benchmark_prints_decision_times() -> None:
    result = run_bench("heartbeats.py", "--replicas", "2000", "--rounds", "3", timeout=120)
    assert result["replicas_known"] == 2000
    for case in ("unchanged_chunk", "chunk_of_new_replicas"):
        assert 0 < result[case]["best_ms"] <= result[case]["median_ms"]


def test_api_benchmark_prints_latency_per_call_and_client_count() -> None:
    result = run_bench(
        "api.py", "--requests", "40", "--clients", "1,4", "--agents", "5", timeout=300
    )
    assert set(result["calls"]) == {"get_agent", "list_50_agents", "health"}
    for runs in result["calls"].values():
        assert [r["clients"] for r in runs] == [1, 4]
        for run in runs:
            assert run["requests"] >= 40
            assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]


def test_replicas_benchmark_prints_the_lag_between_replicas() -> None:
    result = run_bench("replicas.py", "--agents", "30", "--concurrency", "4", timeout=300)
    gets = result["get_after_create"]
    assert gets["status_codes"] == {"200": 30}  # found at once, whichever replica answered
    lag = result["lag_between_replicas"]
    assert lag["replicas"] == 2
    assert lag["events"] > 0


def test_dashboard_benchmark_prints_the_grids_figures() -> None:
    from tests.e2e.test_dashboard import why_no_browser

    if reason := why_no_browser():
        pytest.skip(reason)
    result = run_bench(
        "dashboard.py",
        "--agents",
        "120",
        "--loads",
        "1",
        "--changes",
        "2",
        "--frames",
        "60",
        timeout=300,
    )
    assert result["agents"] == 120
    assert result["grid_interactive_ms"] > 0
    assert 0 < result["status_change_ms"]["p50"] <= result["status_change_ms"]["max"]
    assert result["scroll"]["frames"] == 59
    assert result["scroll"]["grid_says"] == "Showing 120 of 120 agents"


def test_backup_benchmark_prints_archive_size_and_times() -> None:
    result = run_bench("backup.py", "--agents", "5", "--events", "40", timeout=300)
    assert result["events"] >= 40
    assert result["archive_bytes"] > 0
    assert result["backup_s"] > 0
    assert result["restore_s"] > 0
    assert result["restored_agents_listed"] == 5
