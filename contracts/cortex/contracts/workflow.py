"""The workflow service: workflow templates, workflows and their durable executions.

A template lists steps; a step is a task (`type`: agent, http, state, transform) or a
`parallel` group of steps, nested to any depth. Strings in a task may hold `${params.x}` and
`${steps.<id>.output.<path>}`; a string that is only one such reference takes the referenced
value whatever its type. Requests go to `cortex.workflow.<verb>`; every transition of an
execution is an event on `cortex.evt.workflow.<type>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from cortex.contracts.names import DnsLabel, PageSize, Version

TaskType = Literal["agent", "http", "state", "transform"]
StepStatus = Literal[
    "pending", "running", "retrying", "succeeded", "failed", "cancelled", "skipped"
]
ExecutionStatus = Literal["running", "succeeded", "failed", "cancelled"]
Duration = str
"""`500ms`, `10s`, `5m`, `1h`, or a number of seconds."""


class RetrySpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    attempts: int = 1
    """Attempts in all (1: no retry)."""
    backoff: Duration = "1s"
    """Pause before the second attempt; it doubles each time, with +-20 % jitter."""
    max_backoff: Duration = "5m"


class StepSpec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A task (with `id` and `type`) or a group (`parallel`: steps run at the same time)."""

    id: str | None = None
    type: TaskType | None = None
    parallel: list[StepSpec] | None = None
    # agent
    agent: str | None = None
    """agent: an agent's id, name or `<name>.<pool>`; state: whose state."""
    pool: str | None = None
    """agent: any running agent of this pool (in turn)."""
    input: Any = None
    """agent: the request's payload (JSON)."""
    # http
    method: str = "GET"
    url: str | None = None
    headers: dict[str, str] = {}
    body: Any = None
    expect_status: list[int] | None = None
    """Statuses that count as success; by default any 2xx."""
    # state
    op: Literal["get", "put", "patch"] | None = None
    value: Any = None
    """state put: the document; state patch: the merge-patch."""
    # transform
    expression: str | None = None
    """A JMESPath expression over `{"params": ..., "steps": {id: {"output": ...}}}`."""
    output: Any = None
    """transform: a JSON template whose `${...}` references are filled in (instead of
    `expression`)."""
    # every task
    retry: RetrySpec = RetrySpec()
    timeout: Duration | None = None
    """Per attempt."""
    on_error: Literal["fail", "continue"] = "fail"
    """continue: a step that failed for good leaves `output` null and the workflow goes on."""


class WorkflowTemplateSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`template.register`."""

    name: DnsLabel
    version: Version = "1"
    description: str = ""
    params: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})
    """JSON Schema of the parameters."""
    steps: list[StepSpec]


class WorkflowTemplateView(WorkflowTemplateSpec, frozen=True, kw_only=True):
    registered_at: datetime
    registered_by: str | None = None


class WorkflowTemplateRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """`template.register`'s reply: the version, and whether this request registered it."""

    template: WorkflowTemplateView
    created: bool
    """False when the same definition was registered already: nothing changed."""


class WorkflowTemplateSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    latest: str
    versions: list[str]
    description: str


class GetWorkflowTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`template.get`: every version."""

    name: str


class ListWorkflowTemplates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`template.list`."""


class WorkflowTemplateVersions(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    versions: list[WorkflowTemplateView]


class CreateWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`workflow.create`: a template with parameters, ready to execute."""

    template: str
    """`name` (latest) or `name@version`."""
    params: dict[str, Any] = {}
    name: str | None = None
    """Optional label for people."""


class WorkflowView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None = None
    template: str
    template_version: str
    params: dict[str, Any]
    created_at: datetime
    executions: int = 0
    last_execution: str | None = None


class WorkflowRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`workflow.get`."""

    id: str


class ListWorkflows(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`workflow.list`, newest first."""

    template: str | None = None
    limit: PageSize = 100
    before: str | None = None


class WorkflowPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[WorkflowView]
    next: str | None = None


class Execute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`workflow.execute`: run the workflow; `params` override the workflow's."""

    workflow_id: str
    params: dict[str, Any] = {}


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: TaskType
    status: StepStatus
    parent: str | None = None
    """The parallel group it belongs to (`parallel-<n>`), if any."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    output: Any = None
    error: str | None = None


class ExecutionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    workflow_id: str
    template: str
    template_version: str
    status: ExecutionStatus
    params: dict[str, Any]
    steps: list[StepView]
    """In template order, groups flattened; `parent` says which group a step is in."""
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    """Why it failed: which step and why."""
    version: int = 0


class ExecutionRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`execution.get`, `execution.cancel`."""

    id: str


class ListExecutions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`execution.list`, newest first."""

    workflow: str | None = None
    status: ExecutionStatus | None = None
    template: str | None = None
    """Executions of this workflow template (its name)."""
    limit: PageSize = 100
    before: str | None = None


class ExecutionPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ExecutionView]
    next: str | None = None


# --- events ----------------------------------------------------------------------------------


class WorkflowTemplateRegistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "template.registered"
    spec: WorkflowTemplateSpec


class WorkflowCreated(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "workflow.created"
    workflow_id: str
    name: str | None = None
    template: str
    template_version: str
    params: dict[str, Any]


class ExecutionStarted(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "execution.started"
    execution_id: str
    workflow_id: str
    template: str
    template_version: str
    params: dict[str, Any]


class StepStarted(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "step.started"
    step_id: str
    attempt: int


class StepSucceeded(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "step.succeeded"
    step_id: str
    attempt: int
    output: Any = None


class StepFailed(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "step.failed"
    step_id: str
    attempt: int
    error: str
    final: bool
    """No attempt left: the step failed for good."""


class StepRetrying(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "step.retrying"
    step_id: str
    attempt: int
    """The attempt that comes next."""
    delay: float


class ExecutionSucceeded(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "execution.succeeded"


class ExecutionFailed(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "execution.failed"
    error: str
    step_id: str | None = None


class ExecutionCancelled(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "execution.cancelled"
    reason: str = "cancelled"
