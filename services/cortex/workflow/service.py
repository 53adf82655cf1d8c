"""The workflow service: endpoints over templates, workflows and executions; the runners.

Commands decide on the aggregate's own stream (fresh on any replica); lists answer from the
read models. `execution.get` folds the execution's stream too, so that its timeline is exact
whichever replica answers (the gateway follows an execution live with it).
"""

from __future__ import annotations

import msgspec

from cortex.contracts.workflow import (
    CreateWorkflow,
    Execute,
    ExecutionPage,
    ExecutionRef,
    ExecutionStarted,
    ExecutionView,
    GetWorkflowTemplate,
    ListExecutions,
    ListWorkflows,
    ListWorkflowTemplates,
    WorkflowCreated,
    WorkflowPage,
    WorkflowRef,
    WorkflowTemplateRegistered,
    WorkflowTemplateRegistration,
    WorkflowTemplateSpec,
    WorkflowTemplateSummary,
    WorkflowTemplateVersions,
    WorkflowTemplateView,
    WorkflowView,
)
from cortex.kernel.aggregate import Repository
from cortex.kernel.errors import NotFound
from cortex.kernel.ids import new_id
from cortex.kernel.logging import get_logger
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings

from . import domain, timeline
from .domain import CODEC, ExecutionState, TemplateState, WorkflowState
from .metrics import EXECUTIONS
from .projections import (
    ExecutionsProjection,
    TemplatesProjection,
    WorkflowRecord,
    WorkflowsProjection,
    newest_first,
)
from .supervisor import Supervisor
from .timeline import StepSlot
from .validation import check_params, check_template

log = get_logger()

LEASE_TTL = 15.0
"""Seconds a replica's claim on an execution lasts without renewal (renewed every third)."""
SCAN_INTERVAL = 5.0
"""Seconds between looks for running executions that nobody runs."""


class Workflows:
    def __init__(
        self,
        runtime: ServiceRuntime,
        templates: TemplatesProjection,
        workflows: WorkflowsProjection,
        executions: ExecutionsProjection,
        *,
        lease_ttl: float,
        scan_interval: float,
    ) -> None:
        self.runtime = runtime
        self.templates = templates
        self.workflows = workflows
        self.executions = executions
        self.template_repo = Repository[TemplateState](
            runtime,
            CODEC,
            stream_type=domain.TEMPLATE,
            initial=TemplateState,
            evolve=domain.evolve_template,
        )
        self.workflow_repo = Repository[WorkflowState](
            runtime,
            CODEC,
            stream_type=domain.WORKFLOW,
            initial=WorkflowState,
            evolve=domain.evolve_workflow,
        )
        self.execution_repo = Repository[ExecutionState](
            runtime,
            CODEC,
            stream_type=domain.EXECUTION,
            initial=ExecutionState,
            evolve=domain.evolve_execution,
        )
        self.supervisor = Supervisor(
            runtime, self.template, lease_ttl=lease_ttl, scan_interval=scan_interval
        )
        self._layouts: dict[str, list[StepSlot]] = {}

    # --- templates -----------------------------------------------------------------------

    async def register_template(
        self, spec: WorkflowTemplateSpec, ctx: Context
    ) -> WorkflowTemplateRegistration:
        check_template(spec)
        outcome = await self.template_repo.execute(
            domain.template_stream(spec.name),
            lambda state: domain.register_template(state, spec),
            ctx,
        )
        for view in await self._template_views(spec.name):
            if view.version == spec.version:
                return WorkflowTemplateRegistration(template=view, created=bool(outcome.events))
        raise AssertionError("a registered version is in its stream")

    async def list_templates(
        self, req: ListWorkflowTemplates, ctx: Context
    ) -> list[WorkflowTemplateSummary]:
        return [
            WorkflowTemplateSummary(
                name=name,
                latest=views[-1].version,
                versions=[v.version for v in views],
                description=views[-1].description,
            )
            for name, views in sorted(self.templates.model.by_name.items())
        ]

    async def get_template(
        self, req: GetWorkflowTemplate, ctx: Context
    ) -> WorkflowTemplateVersions:
        views = await self._template_views(req.name)
        if not views:
            raise NotFound(f"no workflow template {req.name!r}")
        return WorkflowTemplateVersions(name=req.name, versions=views)

    async def _template_views(self, name: str) -> list[WorkflowTemplateView]:
        views = []
        envelopes = await self.runtime.store.read(domain.template_stream(name))
        for envelope, event in self.runtime.quarantine.decoded(CODEC, envelopes, "template"):
            if isinstance(event, WorkflowTemplateRegistered):
                views.append(
                    WorkflowTemplateView(
                        **msgspec.structs.asdict(event.spec),
                        registered_at=envelope.occurred_at,
                        registered_by=envelope.actor,
                    )
                )
        return views

    async def template(self, name: str, version: str) -> WorkflowTemplateSpec:
        """One version, from its stream (versions are immutable, so any replica agrees)."""
        state, _ = await self.template_repo.load(domain.template_stream(name))
        return domain.pick_version(state, f"{name}@{version}" if version else name)

    # --- workflows -----------------------------------------------------------------------

    async def create_workflow(self, cmd: CreateWorkflow, ctx: Context) -> WorkflowView:
        name, _, version = cmd.template.partition("@")
        spec = await self.template(name, version)
        check_params(spec.params, cmd.params)
        workflow_id = new_id()
        created = WorkflowCreated(
            workflow_id=workflow_id,
            name=cmd.name,
            template=spec.name,
            template_version=spec.version,
            params=cmd.params,
        )
        await self.workflow_repo.execute(
            domain.workflow_stream(workflow_id), lambda _: [created], ctx
        )
        return self.workflows.get(workflow_id).view()

    async def get_workflow(self, req: WorkflowRef, ctx: Context) -> WorkflowView:
        record = self.workflows.model.by_id.get(req.id)
        if record is None:
            # Perhaps created through another replica, whose events this one has not read.
            record = await self._stored_workflow(req.id)
        return record.view()

    async def _stored_workflow(self, workflow_id: str) -> WorkflowRecord:
        envelopes = await self.runtime.store.read(domain.workflow_stream(workflow_id))
        for envelope, event in self.runtime.quarantine.decoded(CODEC, envelopes, "workflow"):
            if isinstance(event, WorkflowCreated):
                return WorkflowRecord(
                    id=event.workflow_id,
                    name=event.name,
                    template=event.template,
                    template_version=event.template_version,
                    params=event.params,
                    created_at=envelope.occurred_at,
                )
        raise NotFound(f"no workflow {workflow_id!r}")

    async def list_workflows(self, req: ListWorkflows, ctx: Context) -> WorkflowPage:
        matching = (
            w
            for w in self.workflows.model.by_id.values()
            if req.template is None or w.template == req.template
        )
        page, nxt = newest_first(matching, lambda w: w.id, req.limit, req.before)
        return WorkflowPage(items=[w.view() for w in page], next=nxt)

    async def _workflow(self, workflow_id: str) -> WorkflowCreated:
        state, _ = await self.workflow_repo.load(domain.workflow_stream(workflow_id))
        if state.created is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        return state.created

    # --- executions ----------------------------------------------------------------------

    async def execute(self, cmd: Execute, ctx: Context) -> ExecutionView:
        workflow = await self._workflow(cmd.workflow_id)
        spec = await self.template(workflow.template, workflow.template_version)
        params = {**workflow.params, **cmd.params}
        check_params(spec.params, params)
        execution_id = new_id()
        started = ExecutionStarted(
            execution_id=execution_id,
            workflow_id=workflow.workflow_id,
            template=spec.name,
            template_version=spec.version,
            params=params,
        )
        await self.execution_repo.execute(
            domain.execution_stream(execution_id),
            lambda state: domain.start_execution(state, started),
            ctx,
        )
        try:
            await self.supervisor.launch(execution_id)
        except Exception as exc:  # recorded as running: a scan (here or elsewhere) runs it
            ctx.log.warning("execution not launched yet", execution_id=execution_id, error=str(exc))
        return await self.execution_view(execution_id)

    async def get_execution(self, req: ExecutionRef, ctx: Context) -> ExecutionView:
        return await self.execution_view(req.id)

    async def execution_view(self, execution_id: str) -> ExecutionView:
        record = None
        envelopes = await self.runtime.store.read(domain.execution_stream(execution_id))
        for envelope, event in self.runtime.quarantine.decoded(CODEC, envelopes, "execution"):
            if event is None:
                continue
            if isinstance(event, ExecutionStarted):
                slots = await self._layout(event.template, event.template_version)
                record = timeline.begin(envelope, event, slots)
            elif record is not None:
                timeline.apply(record, envelope, event)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}")
        return timeline.view(record)

    async def _layout(self, name: str, version: str) -> list[StepSlot]:
        key = f"{name}@{version}"
        if key not in self._layouts:  # template versions never change: cache for good
            self._layouts[key] = timeline.layout(await self.template(name, version))
        return self._layouts[key]

    async def list_executions(self, req: ListExecutions, ctx: Context) -> ExecutionPage:
        matching = (
            e
            for e in self.executions.model.by_id.values()
            if (req.workflow is None or e.workflow_id == req.workflow)
            and (req.status is None or e.status == req.status)
            and (req.template is None or e.template == req.template)
        )
        page, nxt = newest_first(matching, lambda e: e.id, req.limit, req.before)
        return ExecutionPage(items=[timeline.view(e) for e in page], next=nxt)

    async def cancel_execution(self, req: ExecutionRef, ctx: Context) -> ExecutionView:
        reason = f"cancelled by {ctx.actor}" if ctx.actor else "cancelled"
        await self.execution_repo.execute(
            domain.execution_stream(req.id),
            lambda state: domain.cancel_execution(state, req.id, reason),
            ctx,
        )
        EXECUTIONS.labels("cancelled").inc()
        await self.supervisor.cancelled(req.id)
        return await self.execution_view(req.id)

    # --- lifecycle of the service --------------------------------------------------------

    async def on_start(self, runtime: ServiceRuntime) -> None:
        await self.supervisor.start(self.executions.running(), self.executions.model.position)

    async def on_stop(self, runtime: ServiceRuntime) -> None:
        await self.supervisor.stop()


def build(
    settings: Settings,
    *,
    lease_ttl: float = LEASE_TTL,
    scan_interval: float = SCAN_INTERVAL,
) -> ServiceRuntime:
    return build_service(settings, lease_ttl=lease_ttl, scan_interval=scan_interval).runtime


def build_service(
    settings: Settings,
    *,
    lease_ttl: float = LEASE_TTL,
    scan_interval: float = SCAN_INTERVAL,
) -> Workflows:
    """The service with its runtime (`.runtime`), for tests that look at its runners."""
    templates = TemplatesProjection()
    workflows = WorkflowsProjection()
    executions = ExecutionsProjection()
    runtime = ServiceRuntime(
        "workflow",
        settings,
        projections=[templates, workflows, executions],
        description="CodeValdCortex workflows: templates, workflows, durable executions",
    )
    service = Workflows(
        runtime,
        templates,
        workflows,
        executions,
        lease_ttl=lease_ttl,
        scan_interval=scan_interval,
    )
    runtime.on_start(service.on_start)
    runtime.on_stop(service.on_stop)
    runtime.endpoint("template.register", WorkflowTemplateSpec)(service.register_template)
    runtime.endpoint("template.list", ListWorkflowTemplates)(service.list_templates)
    runtime.endpoint("template.get", GetWorkflowTemplate)(service.get_template)
    runtime.endpoint("workflow.create", CreateWorkflow)(service.create_workflow)
    runtime.endpoint("workflow.get", WorkflowRef)(service.get_workflow)
    runtime.endpoint("workflow.list", ListWorkflows)(service.list_workflows)
    runtime.endpoint("workflow.execute", Execute)(service.execute)
    runtime.endpoint("execution.get", ExecutionRef)(service.get_execution)
    runtime.endpoint("execution.list", ListExecutions)(service.list_executions)
    runtime.endpoint("execution.cancel", ExecutionRef)(service.cancel_execution)
    return service
