"""Workflow templates, workflows and executions as event-sourced aggregates: pure state and
decisions.

Streams: `wftemplate-<name>` (every version of a workflow template), `workflow-<id>` (a
template with its parameters), `execution-<id>` (one run: its start, every step transition,
its end). Nothing here does I/O; `service.py` and `runner.py` load, decide and append.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cortex.contracts.workflow import (
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionStatus,
    ExecutionSucceeded,
    StepFailed,
    StepRetrying,
    StepStarted,
    StepStatus,
    StepSucceeded,
    WorkflowCreated,
    WorkflowTemplateRegistered,
    WorkflowTemplateSpec,
)
from cortex.kernel.errors import Conflict, NotFound
from cortex.kernel.events import EventCodec
from cortex.kernel.versions import is_new_version

CODEC = EventCodec(
    WorkflowTemplateRegistered,
    WorkflowCreated,
    ExecutionStarted,
    StepStarted,
    StepSucceeded,
    StepFailed,
    StepRetrying,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionCancelled,
)

TEMPLATE = "wftemplate"
WORKFLOW = "workflow"
EXECUTION = "execution"

FINISHED: dict[str, ExecutionStatus] = {
    ExecutionSucceeded.TYPE: "succeeded",
    ExecutionFailed.TYPE: "failed",
    ExecutionCancelled.TYPE: "cancelled",
}
"""Event types that end an execution, and the status each leaves."""


def template_stream(name: str) -> str:
    return f"{TEMPLATE}-{name}"


def workflow_stream(workflow_id: str) -> str:
    return f"{WORKFLOW}-{workflow_id}"


def execution_stream(execution_id: str) -> str:
    return f"{EXECUTION}-{execution_id}"


def execution_of(stream_id: str) -> str | None:
    prefix = f"{EXECUTION}-"
    return stream_id[len(prefix) :] if stream_id.startswith(prefix) else None


# --- templates ---------------------------------------------------------------------------


class TemplateState(msgspec.Struct):
    versions: dict[str, WorkflowTemplateSpec] = {}
    latest: str | None = None


def evolve_template(state: TemplateState, event: Any) -> TemplateState:
    if isinstance(event, WorkflowTemplateRegistered):
        versions = {**state.versions, event.spec.version: event.spec}
        return TemplateState(versions=versions, latest=event.spec.version)
    return state


def register_template(
    state: TemplateState, spec: WorkflowTemplateSpec
) -> list[WorkflowTemplateRegistered]:
    """Versions are immutable: the same spec again is a no-op, a different one a conflict
    (executions that ran a version must stay explainable by it)."""
    existing = state.versions.get(spec.version)
    if is_new_version(
        existing, spec, kind="workflow template", name=spec.name, version=spec.version
    ):
        return [WorkflowTemplateRegistered(spec=spec)]
    return []


def pick_version(state: TemplateState, ref: str) -> WorkflowTemplateSpec:
    """`name` (the latest version) or `name@version`, from the template's own stream."""
    name, _, version = ref.partition("@")
    if state.latest is None:
        raise NotFound(f"no workflow template {name!r}", details={"field": "$.template"})
    spec = state.versions.get(version or state.latest)
    if spec is None:
        raise NotFound(
            f"workflow template {name!r} has no version {version!r}",
            details={"field": "$.template", "versions": sorted(state.versions)},
        )
    return spec


# --- workflows ---------------------------------------------------------------------------


class WorkflowState(msgspec.Struct):
    created: WorkflowCreated | None = None


def evolve_workflow(state: WorkflowState, event: Any) -> WorkflowState:
    if isinstance(event, WorkflowCreated):
        return WorkflowState(created=event)
    return state


# --- executions --------------------------------------------------------------------------


class StepState(msgspec.Struct):
    status: StepStatus = "pending"
    attempt: int = 0
    """The last attempt started (attempts are numbered from 1)."""
    failures: int = 0
    """Attempts that failed: what the retry budget counts. An attempt cut short by a restart
    of the service is not a failure of the step and is simply run again."""
    output: Any = None
    error: str | None = None


class ExecutionState(msgspec.Struct):
    started: ExecutionStarted | None = None
    status: ExecutionStatus | None = None
    steps: dict[str, StepState] = {}
    error: str | None = None

    def step(self, step_id: str) -> StepState:
        return self.steps.get(step_id) or StepState()


def evolve_execution(state: ExecutionState, event: Any) -> ExecutionState:
    if isinstance(event, ExecutionStarted):
        return ExecutionState(started=event, status="running")
    if isinstance(event, StepStarted | StepSucceeded | StepFailed | StepRetrying):
        step = msgspec.structs.replace(state.step(event.step_id))
        if isinstance(event, StepStarted):
            step.status, step.attempt = "running", event.attempt
        elif isinstance(event, StepSucceeded):
            step.status, step.output, step.error = "succeeded", event.output, None
        elif isinstance(event, StepFailed):
            step.failures += 1
            step.error = event.error
            step.status = "failed" if event.final else "retrying"
        else:
            step.status = "retrying"
        return msgspec.structs.replace(state, steps={**state.steps, event.step_id: step})
    if isinstance(event, ExecutionSucceeded):
        return msgspec.structs.replace(state, status="succeeded")
    if isinstance(event, ExecutionFailed):
        return msgspec.structs.replace(state, status="failed", error=event.error)
    if isinstance(event, ExecutionCancelled):
        return msgspec.structs.replace(state, status="cancelled", error=event.reason)
    return state


def start_execution(state: ExecutionState, started: ExecutionStarted) -> list[ExecutionStarted]:
    if state.started is not None:  # ids are fresh uuid7s: only a bug gets here
        raise Conflict(f"execution {started.execution_id} exists already")
    return [started]


def cancel_execution(
    state: ExecutionState, execution_id: str, reason: str
) -> list[ExecutionCancelled]:
    if state.started is None:
        raise NotFound(f"no execution {execution_id!r}")
    if state.status != "running":
        raise Conflict(
            f"execution {execution_id} has finished ({state.status}); only a running "
            "execution can be cancelled",
            details={"status": state.status},
        )
    return [ExecutionCancelled(reason=reason)]
