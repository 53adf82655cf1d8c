"""The workflow service's own metrics (the runtime adds request counts and latencies)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EXECUTIONS = Counter(
    "cortex_workflow_executions_total",
    "Executions that finished, by how they finished",
    ["status"],
)
STEP_DURATION = Histogram(
    "cortex_workflow_step_duration_seconds",
    "Time one attempt of a step took, by task type",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RUNNING = Gauge(
    "cortex_workflow_executions_running",
    "Executions whose runner is in this process",
)
