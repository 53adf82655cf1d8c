"""Workflow templates, workflows, executions, and an execution's live events (SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from cortex.contracts.events import EventEnvelope
from cortex.contracts.workflow import (
    CreateWorkflow,
    Execute,
    ExecutionPage,
    ExecutionRef,
    ExecutionStatus,
    ExecutionView,
    GetWorkflowTemplate,
    ListExecutions,
    ListWorkflows,
    ListWorkflowTemplates,
    WorkflowPage,
    WorkflowRef,
    WorkflowTemplateRegistration,
    WorkflowTemplateSpec,
    WorkflowTemplateSummary,
    WorkflowTemplateVersions,
    WorkflowTemplateView,
    WorkflowView,
)
from cortex.gateway.document import problem
from cortex.gateway.routes.templates import UNCHANGED, registered
from cortex.gateway.sse import KEEPALIVE, comment
from cortex.gateway.state import Gateway, GatewayDep, IdempotencyKey


class ExecuteBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    params: dict[str, Any] = {}


@post(
    "/api/v1/workflow-templates",
    tags=["workflows"],
    status_code=201,
    summary="Register a workflow template version (validated; immutable once registered)",
    description="Besides its schema, a template is refused (422, every problem named by its "
    "JSON path) unless: it has at least one step; each task has a unique `id` (letters, "
    "digits, `_` and `-`) and a `type` with the fields that type needs; a parallel group "
    "holds steps and has neither `id` nor `type`; durations parse; `${...}` references name "
    "parameters or steps that ran before; `params` is a JSON Schema.",
    responses={200: ResponseSpec(WorkflowTemplateView, description=UNCHANGED)},
)
async def register_template(
    gw: GatewayDep,
    data: JSONBody[WorkflowTemplateSpec],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Response[WorkflowTemplateView]:
    done = await gw.ask(
        "workflow",
        "template.register",
        data,
        WorkflowTemplateRegistration,
        request,
        idempotency_key=idempotency_key,
    )
    return registered(done.template, created=done.created)


@get("/api/v1/workflow-templates", tags=["workflows"], summary="Workflow templates")
async def list_templates(
    gw: GatewayDep, request: Request[Any, Any, Any]
) -> list[WorkflowTemplateSummary]:
    return await gw.ask(
        "workflow", "template.list", ListWorkflowTemplates(), list[WorkflowTemplateSummary], request
    )


@get(
    "/api/v1/workflow-templates/{name:str}",
    tags=["workflows"],
    summary="Every version of a workflow template",
)
async def get_template(
    gw: GatewayDep, name: FromPath[str], request: Request[Any, Any, Any]
) -> WorkflowTemplateVersions:
    return await gw.ask(
        "workflow", "template.get", GetWorkflowTemplate(name), WorkflowTemplateVersions, request
    )


@post(
    "/api/v1/workflows",
    tags=["workflows"],
    status_code=201,
    summary="Create a workflow from a template and parameters",
    responses={404: problem(404, "No workflow template of that name (and version)")},
)
async def create_workflow(
    gw: GatewayDep,
    data: JSONBody[CreateWorkflow],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> WorkflowView:
    return await gw.ask(
        "workflow", "workflow.create", data, WorkflowView, request, idempotency_key=idempotency_key
    )


@get("/api/v1/workflows", tags=["workflows"], summary="Workflows, newest first")
async def list_workflows(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    template: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    before: FromQuery[str | None] = None,
) -> WorkflowPage:
    query = ListWorkflows(template=template, limit=limit, before=before)
    return await gw.ask("workflow", "workflow.list", query, WorkflowPage, request)


@get("/api/v1/workflows/{workflow_id:str}", tags=["workflows"], summary="One workflow")
async def get_workflow(
    gw: GatewayDep, workflow_id: FromPath[str], request: Request[Any, Any, Any]
) -> WorkflowView:
    return await gw.ask("workflow", "workflow.get", WorkflowRef(workflow_id), WorkflowView, request)


@post(
    "/api/v1/workflows/{workflow_id:str}/execute",
    tags=["workflows"],
    status_code=202,
    summary="Start an execution (its `id` in the reply); `params` override the workflow's",
)
async def execute(
    gw: GatewayDep,
    workflow_id: FromPath[str],
    request: Request[Any, Any, Any],
    data: JSONBody[ExecuteBody | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> ExecutionView:
    cmd = Execute(workflow_id=workflow_id, params=data.params if data else {})
    return await gw.ask(
        "workflow", "workflow.execute", cmd, ExecutionView, request, idempotency_key=idempotency_key
    )


@get("/api/v1/executions", tags=["executions"], summary="Executions, newest first")
async def list_executions(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    workflow: FromQuery[str | None] = None,
    status: FromQuery[ExecutionStatus | None] = None,
    template: Annotated[
        str | None, QueryParameter(description="Executions of this workflow template")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    before: FromQuery[str | None] = None,
) -> ExecutionPage:
    query = ListExecutions(
        workflow=workflow, status=status, template=template, limit=limit, before=before
    )
    return await gw.ask("workflow", "execution.list", query, ExecutionPage, request)


@get(
    "/api/v1/executions/{execution_id:str}",
    tags=["executions"],
    summary="An execution's status and the timeline of its steps",
)
async def get_execution(
    gw: GatewayDep, execution_id: FromPath[str], request: Request[Any, Any, Any]
) -> ExecutionView:
    return await gw.ask(
        "workflow", "execution.get", ExecutionRef(execution_id), ExecutionView, request
    )


@post(
    "/api/v1/executions/{execution_id:str}/cancel",
    tags=["executions"],
    status_code=200,
    summary="Stop a running execution (409 once it has finished)",
)
async def cancel_execution(
    gw: GatewayDep,
    execution_id: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> ExecutionView:
    return await gw.ask(
        "workflow",
        "execution.cancel",
        ExecutionRef(execution_id),
        ExecutionView,
        request,
        idempotency_key=idempotency_key,
    )


@get(
    "/api/v1/executions/{execution_id:str}/events",
    tags=["executions"],
    summary="Server-sent events: the execution now, then each of its events as it happens, "
    "until it has finished",
    responses={
        200: ResponseSpec(
            # A union is what the document should show; Litestar's annotation (with pydantic
            # installed, as the Kubernetes client brings it) names single types only.
            cast(Any, ExecutionView | EventEnvelope),
            media_type="text/event-stream",
            description="`event: execution`, `data: <ExecutionView>` for the execution as it "
            "is now; `event: <type>`, `id: <version>`, `data: <EventEnvelope>` per event",
            generate_examples=False,
        )
    },
)
async def execution_events(
    gw: GatewayDep, execution_id: FromPath[str], request: Request[Any, Any, Any]
) -> ServerSentEvent:
    # Ask once now, so an unknown execution is a 404 rather than an empty stream.
    await _execution(gw, execution_id, request)
    return ServerSentEvent(_follow(gw, execution_id, request))


async def _follow(
    gw: Gateway, execution_id: str, request: Request[Any, Any, Any]
) -> AsyncIterator[ServerSentEventMessage]:
    """Subscribe first, then read the current view: no event can fall between the two.

    Events the view already holds arrive all the same (the outbox relay publishes after the
    workflow service has applied them, and a second relay publishes its own copies), so the
    stream sends each event once, in order: ids only go up from the first view's version."""
    async with gw.followers.follow("workflow", f"execution-{execution_id}") as events:
        view = await _execution(gw, execution_id, request)
        last = view.version
        yield _message("execution", view, last)
        while view.status == "running":
            try:
                async with asyncio.timeout(KEEPALIVE):
                    msg = await events.get()
            except TimeoutError:
                yield comment("keep-alive")
                continue
            envelope = msgspec.json.decode(msg.data, type=EventEnvelope)
            if envelope.version <= last:
                continue
            last = envelope.version
            yield ServerSentEventMessage(data=msg.data.decode(), event=envelope.type, id=last)
            view = await _execution(gw, execution_id, request)
            # No id: the view may be ahead of the events still on their way, and those must
            # not look like repeats of an id already sent.
            yield _message("execution", view)


async def _execution(
    gw: Gateway, execution_id: str, request: Request[Any, Any, Any]
) -> ExecutionView:
    return await gw.ask(
        "workflow", "execution.get", ExecutionRef(execution_id), ExecutionView, request
    )


def _message(event: str, view: ExecutionView, version: int | None = None) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(view).decode(), event=event, id=version)


ROUTES = [
    register_template,
    list_templates,
    get_template,
    create_workflow,
    list_workflows,
    get_workflow,
    execute,
    list_executions,
    get_execution,
    cancel_execution,
    execution_events,
]
