"""The workflow read models: templates, workflows (with their executions count), executions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.workflow import (
    ExecutionStarted,
    WorkflowCreated,
    WorkflowTemplateRegistered,
    WorkflowTemplateView,
    WorkflowView,
)
from cortex.kernel.errors import NotFound
from cortex.kernel.projection import StructProjection
from cortex.kernel.versions import all_versions, find_version

from . import timeline
from .domain import CODEC, execution_of
from .timeline import ExecutionRecord, StepSlot

T = TypeVar("T")
KIND = "workflow template"


class Templates(msgspec.Struct):
    by_name: dict[str, list[WorkflowTemplateView]] = {}


class TemplatesProjection(StructProjection[Templates]):
    name = "workflow-templates"
    version = 1
    model_type = Templates

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, WorkflowTemplateRegistered):
            view = WorkflowTemplateView(
                **msgspec.structs.asdict(data.spec),
                registered_at=event.occurred_at,
                registered_by=event.actor,
            )
            self.model.by_name.setdefault(data.spec.name, []).append(view)

    def get(self, ref: str) -> WorkflowTemplateView:
        """`name` (the latest version) or `name@version`."""
        return find_version(self.model.by_name.get(ref.partition("@")[0]), ref, kind=KIND)

    def versions(self, name: str) -> list[WorkflowTemplateView]:
        return all_versions(self.model.by_name.get(name), name, kind=KIND)


class WorkflowRecord(msgspec.Struct):
    id: str
    template: str
    template_version: str
    params: dict[str, Any]
    created_at: datetime
    name: str | None = None
    executions: int = 0
    last_execution: str | None = None

    def view(self) -> WorkflowView:
        return WorkflowView(**msgspec.structs.asdict(self))


class Workflows(msgspec.Struct):
    by_id: dict[str, WorkflowRecord] = {}


class WorkflowsProjection(StructProjection[Workflows]):
    name = "workflows"
    version = 1
    model_type = Workflows

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, WorkflowCreated):
            self.model.by_id[data.workflow_id] = WorkflowRecord(
                id=data.workflow_id,
                name=data.name,
                template=data.template,
                template_version=data.template_version,
                params=data.params,
                created_at=event.occurred_at,
            )
        elif isinstance(data, ExecutionStarted):
            record = self.model.by_id.get(data.workflow_id)
            if record is not None:
                record.executions += 1
                record.last_execution = data.execution_id

    def get(self, workflow_id: str) -> WorkflowRecord:
        record = self.model.by_id.get(workflow_id)
        if record is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        return record


class Executions(msgspec.Struct):
    by_id: dict[str, ExecutionRecord] = {}
    layouts: dict[str, list[StepSlot]] = {}
    """Each template version's steps (`name@version`): what an execution's timeline shows."""
    position: int = 0
    """The last event position applied: where a scan of running executions picks up."""


class ExecutionsProjection(StructProjection[Executions]):
    name = "executions"
    version = 1
    model_type = Executions

    def apply(self, event: EventEnvelope) -> None:
        self.model.position = event.position
        data = CODEC.decode(event)
        if data is None:
            return
        if isinstance(data, WorkflowTemplateRegistered):
            key = f"{data.spec.name}@{data.spec.version}"
            self.model.layouts[key] = timeline.layout(data.spec)
            return
        if isinstance(data, ExecutionStarted):
            slots = self.model.layouts.get(f"{data.template}@{data.template_version}", [])
            self.model.by_id[data.execution_id] = timeline.begin(event, data, slots)
            return
        execution_id = execution_of(event.stream_id)
        record = self.model.by_id.get(execution_id) if execution_id else None
        if record is not None:
            timeline.apply(record, event, data)

    def running(self) -> list[str]:
        return [r.id for r in self.model.by_id.values() if r.status == "running"]


def newest_first(
    items: Iterable[T], key: Callable[[T], str], limit: int, before: str | None
) -> tuple[list[T], str | None]:
    """A page of items ordered by id descending (ids are uuid7: newest first), after the
    cursor `before` (the previous page's `next`)."""
    ordered = sorted((i for i in items if before is None or key(i) < before), key=key, reverse=True)
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, key(page[-1]) if more and page else None
