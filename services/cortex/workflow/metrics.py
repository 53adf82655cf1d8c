"""The workflow service's own metrics (the runtime adds request counts and latencies).

Each execution runs on one replica at a time, so every replica counts only what it ran: summed
over the replicas these are the platform's figures."""

from __future__ import annotations

from typing import get_args

from cortex.contracts.workflow import ExecutionStatus, TaskType
from cortex.kernel.metrics import counter, each, gauge, histogram

EVERY_REPLICA = each("workflow")

EXECUTIONS = counter(
    "cortex_workflow_executions_total",
    "Executions that finished, by how they finished (succeeded, failed, cancelled)",
    ["status"],
    exported_by=EVERY_REPLICA,
)
STEP_DURATION = histogram(
    "cortex_workflow_step_duration_seconds",
    "Time one attempt of a step took, by task type",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    exported_by=EVERY_REPLICA,
)
STEP_RETRIES = counter(
    "cortex_workflow_step_retries_total",
    "Attempts of a step after a failed one (its `retry` policy), by task type",
    ["type"],
    exported_by=EVERY_REPLICA,
)
RUNNING = gauge(
    "cortex_workflow_executions_running",
    "Executions whose runner is in this process",
    exported_by=EVERY_REPLICA,
)

# Series at 0 from the start: a rate over them reads 0, not "no data".
for _status in get_args(ExecutionStatus):
    if _status != "running":
        EXECUTIONS.labels(_status)
for _type in get_args(TaskType):
    STEP_DURATION.labels(_type)
    STEP_RETRIES.labels(_type)
