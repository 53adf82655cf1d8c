"""An execution as people read it: status, and each step's timeline (when it started and
finished, how many attempts, its output or error), folded from the execution's events.

The same fold serves the executions read model and `execution.get`, which folds the stream
itself so that it is exact on any replica.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.workflow import (
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionStatus,
    ExecutionSucceeded,
    ExecutionView,
    StepFailed,
    StepRetrying,
    StepSpec,
    StepStarted,
    StepStatus,
    StepSucceeded,
    StepView,
    TaskType,
    WorkflowTemplateSpec,
)


class StepSlot(msgspec.Struct, frozen=True):
    id: str
    type: TaskType
    parent: str | None


def group_name(index_path: tuple[int, ...]) -> str:
    """`parallel-1` for the group at `$.steps[1]`, `parallel-1.2` for the group nested at
    `$.steps[1].parallel[2]`: the name says where the group is in the template."""
    return "parallel-" + ".".join(str(i) for i in index_path)


def layout(spec: WorkflowTemplateSpec) -> list[StepSlot]:
    """Every task of the template in template order, groups flattened, with its group."""
    slots: list[StepSlot] = []

    def walk(step: StepSpec, where: tuple[int, ...], parent: str | None) -> None:
        if step.parallel is not None:
            name = group_name(where)
            for index, child in enumerate(step.parallel):
                walk(child, (*where, index), name)
        elif step.id is not None and step.type is not None:
            slots.append(StepSlot(step.id, step.type, parent))

    for index, step in enumerate(spec.steps):
        walk(step, (index,), None)
    return slots


class StepRecord(msgspec.Struct):
    id: str
    type: TaskType
    parent: str | None = None
    status: StepStatus = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    output: Any = None
    error: str | None = None


class ExecutionRecord(msgspec.Struct):
    id: str
    workflow_id: str
    template: str
    template_version: str
    params: dict[str, Any]
    started_at: datetime
    steps: dict[str, StepRecord]
    """By id, in template order."""
    status: ExecutionStatus = "running"
    finished_at: datetime | None = None
    error: str | None = None
    version: int = 0


def begin(
    envelope: EventEnvelope, started: ExecutionStarted, slots: list[StepSlot]
) -> ExecutionRecord:
    return ExecutionRecord(
        id=started.execution_id,
        workflow_id=started.workflow_id,
        template=started.template,
        template_version=started.template_version,
        params=started.params,
        started_at=envelope.occurred_at,
        steps={s.id: StepRecord(id=s.id, type=s.type, parent=s.parent) for s in slots},
        version=envelope.version,
    )


_STOPPED: dict[str, StepStatus] = {
    "running": "cancelled",
    "retrying": "cancelled",
    "pending": "skipped",
}
"""What becomes of unfinished steps when the execution ends without them."""


def apply(record: ExecutionRecord, envelope: EventEnvelope, event: Any) -> None:
    """Fold one event of the execution's stream into its record (in place)."""
    record.version = envelope.version
    at = envelope.occurred_at
    if isinstance(event, StepStarted | StepSucceeded | StepFailed | StepRetrying):
        step = record.steps.get(event.step_id)
        if step is None:  # a step the template does not have: nothing to show it in
            return
        if isinstance(event, StepStarted):
            step.status, step.attempts = "running", event.attempt
            step.started_at = step.started_at or at
        elif isinstance(event, StepSucceeded):
            step.status, step.output, step.error = "succeeded", event.output, None
            step.attempts, step.finished_at = event.attempt, at
        elif isinstance(event, StepFailed):
            step.error, step.attempts = event.error, event.attempt
            if event.final:
                step.status, step.finished_at = "failed", at
            else:
                step.status = "retrying"
        else:
            step.status = "retrying"
        return
    if isinstance(event, ExecutionSucceeded):
        record.status, record.finished_at = "succeeded", at
    elif isinstance(event, ExecutionFailed | ExecutionCancelled):
        record.status = "failed" if isinstance(event, ExecutionFailed) else "cancelled"
        record.finished_at = at
        record.error = event.error if isinstance(event, ExecutionFailed) else event.reason
        for step in record.steps.values():
            stopped = _STOPPED.get(step.status)
            if stopped is not None:
                step.status = stopped
                if stopped == "cancelled":
                    step.finished_at = at


def view(record: ExecutionRecord) -> ExecutionView:
    return ExecutionView(
        id=record.id,
        workflow_id=record.workflow_id,
        template=record.template,
        template_version=record.template_version,
        status=record.status,
        params=record.params,
        steps=[
            StepView(
                id=s.id,
                type=s.type,
                status=s.status,
                parent=s.parent,
                started_at=s.started_at,
                finished_at=s.finished_at,
                attempts=s.attempts,
                output=s.output,
                error=s.error,
            )
            for s in record.steps.values()
        ],
        started_at=record.started_at,
        finished_at=record.finished_at,
        error=record.error,
        version=record.version,
    )
