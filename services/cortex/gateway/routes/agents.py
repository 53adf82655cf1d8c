"""Agents: create, list, get, update, deploy, scale, delete, and talk to them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from cortex.contracts.lifecycle import (
    AgentPage,
    AgentStatus,
    AgentView,
    CreateAgent,
    DeleteAgent,
    DeployAgent,
    ListAgents,
    ScaleAgent,
    ScalePlan,
    UpdateAgent,
)
from cortex.contracts.messages import AgentMessage, SendMessage, SendResult, SendStatus
from cortex.contracts.names import Labels, Replicas
from cortex.contracts.registry import InstancePage, ListInstances
from cortex.gateway.auth import principal_of, require
from cortex.gateway.body_limits import MESSAGE_BODY_LIMIT
from cortex.gateway.document import problem
from cortex.gateway.state import Gateway, GatewayDep, IdempotencyKey
from cortex.kernel.errors import Conflict, CortexError, Invalid, Timeout
from cortex.kernel.ids import new_id
from cortex.kernel.messages import (
    claimed_payload,
    confirmation,
    payload_from_api,
    read_message,
    reply_error,
    request_agent,
    send_to_agent,
)
from cortex.kernel.serving import how_to_deploy, not_serving
from cortex.kernel.waiting import cancel_and_wait

TAGS = ["agents"]
MAX_WAIT = 300.0

LABEL = "^[^=]+="
"""A label filter: `key=value`, the key not empty (the value may be)."""

DryRun = Annotated[
    bool, QueryParameter(description="Validate and show what would happen; change nothing")
]


class AgentBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PUT /agents/{id}`: the config, labels and/or pool to replace (`"pool": ""` leaves it)."""

    config: dict[str, Any] | None = None
    labels: Labels | None = None
    pool: str | None = None


class DeployBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    replicas: Replicas | None = None


class ScaleBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    replicas: Replicas


@post(
    "/api/v1/agents",
    tags=TAGS,
    summary="Create an agent from a template",
    responses={
        200: ResponseSpec(
            AgentView, description="`dry_run`: the agent as it would be; nothing was created"
        ),
        404: problem(404, "No template of that name (and version) is registered"),
    },
)
async def create_agent(
    gw: GatewayDep,
    data: JSONBody[CreateAgent],
    request: Request[Any, Any, Any],
    dry_run: DryRun = False,
    idempotency_key: IdempotencyKey = None,
) -> Response[AgentView]:
    cmd = msgspec.structs.replace(data, dry_run=dry_run or data.dry_run)
    view = await gw.ask(
        "lifecycle", "agent.create", cmd, AgentView, request, idempotency_key=idempotency_key
    )
    return Response(view, status_code=200 if cmd.dry_run else 201)


@get("/api/v1/agents", tags=TAGS, summary="Agents, filtered and paged (ordered by name)")
async def list_agents(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    status: FromQuery[AgentStatus | None] = None,
    template: FromQuery[str | None] = None,
    pool: FromQuery[str | None] = None,
    label: Annotated[
        list[str] | None,
        QueryParameter(
            description="`key=value`; repeat for several",
            # The document states the rule checked below (a pattern on each item).
            schema_extra={
                "one_of": [
                    Schema(
                        type=OpenAPIType.ARRAY,
                        items=Schema(type=OpenAPIType.STRING, pattern=LABEL),
                    ),
                    Schema(type=OpenAPIType.NULL),
                ]
            },
        ),
    ] = None,
    name: Annotated[
        str | None, QueryParameter(description="Agents whose name contains this, in any case")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    after: Annotated[str | None, QueryParameter(description="`next` of the previous page")] = None,
) -> AgentPage:
    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid.field("query.label", f"{item!r} is not key=value")
        labels[key] = value
    query = ListAgents(
        status=status,
        template=template,
        pool=pool,
        labels=labels,
        name=name,
        limit=limit,
        after=after,
    )
    return await gw.ask("lifecycle", "agent.list", query, AgentPage, request)


@get("/api/v1/agents/{ref:str}", tags=TAGS, summary="One agent (by id or name), with its instances")
async def get_agent(
    gw: GatewayDep, ref: FromPath[str], request: Request[Any, Any, Any]
) -> AgentView:
    async def instances(agent_id: str) -> InstancePage | None:
        try:
            return await gw.ask(
                "registry", "instance.list", ListInstances(agent=agent_id), InstancePage, request
            )
        except CortexError:
            return None  # the registry is away: the agent itself is still worth showing

    # Both questions at once when REF may be the id (it usually is): one round trip less.
    guess = asyncio.create_task(instances(ref))
    try:
        view = await gw.agent(ref, request)
    except BaseException:
        await cancel_and_wait(guess)
        raise
    page = await guess if view.id == ref else await instances(view.id)
    if page is None:
        return view
    ready = sum(1 for i in page.items if i.health == "healthy" and i.state == "running")
    return msgspec.structs.replace(view, instances=page.items, ready_replicas=ready)


@put("/api/v1/agents/{ref:str}", tags=TAGS, summary="Replace an agent's config and/or labels")
async def update_agent(
    gw: GatewayDep,
    ref: FromPath[str],
    data: JSONBody[AgentBody],
    request: Request[Any, Any, Any],
    dry_run: DryRun = False,
    idempotency_key: IdempotencyKey = None,
) -> AgentView:
    cmd = UpdateAgent(
        ref=ref, config=data.config, labels=data.labels, pool=data.pool, dry_run=dry_run
    )
    return await gw.ask(
        "lifecycle", "agent.update", cmd, AgentView, request, idempotency_key=idempotency_key
    )


@post(
    "/api/v1/agents/{ref:str}/deploy",
    tags=TAGS,
    status_code=202,
    summary="Start the agent's replicas",
)
async def deploy_agent(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    data: JSONBody[DeployBody | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> AgentView:
    cmd = DeployAgent(ref=ref, replicas=data.replicas if data else None)
    return await gw.ask(
        "lifecycle", "agent.deploy", cmd, AgentView, request, idempotency_key=idempotency_key
    )


@post(
    "/api/v1/agents/{ref:str}/scale",
    tags=TAGS,
    status_code=202,
    summary="Change the number of replicas",
    responses={200: ResponseSpec(ScalePlan, description="`dry_run`: the plan; nothing changed")},
)
async def scale_agent(
    gw: GatewayDep,
    ref: FromPath[str],
    data: JSONBody[ScaleBody],
    request: Request[Any, Any, Any],
    dry_run: DryRun = False,
    idempotency_key: IdempotencyKey = None,
) -> Response[ScalePlan]:
    cmd = ScaleAgent(ref=ref, replicas=data.replicas, dry_run=dry_run)
    plan = await gw.ask(
        "lifecycle", "agent.scale", cmd, ScalePlan, request, idempotency_key=idempotency_key
    )
    # Accepted means "it will happen"; a dry run made nothing happen, so it is a plain answer.
    return Response(plan, status_code=200 if dry_run else 202)


@delete(
    "/api/v1/agents/{ref:str}",
    tags=TAGS,
    status_code=202,
    summary="Terminate gracefully (the record stays and can be deployed again); "
    "`purge=true` removes the agent for good (admin)",
)
async def delete_agent(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    grace: Annotated[
        float | None, QueryParameter(ge=0, le=86400, description="Seconds per replica")
    ] = None,
    purge: FromQuery[bool] = False,
    idempotency_key: IdempotencyKey = None,
) -> AgentView:
    if purge:
        require(request, "admin", "purging an agent (its record and state go for good)")
    cmd = DeleteAgent(ref=ref, grace=grace, purge=purge)
    return await gw.ask(
        "lifecycle", "agent.delete", cmd, AgentView, request, idempotency_key=idempotency_key
    )


@post(
    "/api/v1/agents/{ref:str}/messages",
    tags=TAGS,
    status_code=200,
    request_max_body_size=MESSAGE_BODY_LIMIT,
    summary="Send a message to an agent; with `wait`, return its reply",
    description="`wait` (for the agent's reply) and `confirm` (until its handler succeeded) "
    "exclude each other: a request with both is refused (422).",
    responses={
        202: ResponseSpec(
            SendResult,
            description="Without `wait` or `confirm`: stored in the agent's inbox "
            "(`agent_status` says whether the agent runs)",
        ),
        409: problem(
            409,
            "With `wait` or `confirm`, the agent is not running: the message is "
            "stored all the same (`details.message_id`) and handled once it runs; "
            "`details.agent_status` says why it does not run now",
        ),
    },
)
async def send_message(
    gw: GatewayDep,
    ref: FromPath[str],
    data: JSONBody[SendMessage],
    request: Request[Any, Any, Any],
    wait: Annotated[
        float | None, QueryParameter(ge=0, le=MAX_WAIT, description="Seconds to wait for the reply")
    ] = None,
    confirm: Annotated[
        float | None,
        QueryParameter(
            ge=0, le=MAX_WAIT, description="Seconds to wait until the agent's handler succeeded"
        ),
    ] = None,
) -> Response[SendResult]:
    if wait and confirm:
        raise Invalid.field("query.confirm", "wait (for a reply) and confirm exclude each other")
    agent = await gw.agent(ref, request)
    principal = principal_of(request)
    outgoing = _Outgoing(
        gw,
        agent,
        data,
        payload_from_api(data.payload, data.content_type),
        sender=f"api:{principal.name}" if principal else "api",
    )
    if wait or confirm:
        await outgoing.refuse_to_wait_for_idle(as_request=bool(wait))
    if confirm:
        return Response(await outgoing.confirmed(confirm))
    if wait:
        return Response(await outgoing.replied(wait))
    return Response(await outgoing.accepted(), status_code=202)


class _Outgoing:
    """One message from the API to an agent, and what the caller waits for."""

    def __init__(
        self, gw: Gateway, agent: AgentView, data: SendMessage, payload: bytes, sender: str
    ) -> None:
        self.gw = gw
        self.agent = agent
        self.data = data
        self.payload = payload
        self.sender = sender

    async def send(self, msg_id: str | None = None, reply_to: str | None = None) -> str:
        return await send_to_agent(
            self.gw.nc.jetstream(),
            self.gw.subjects,
            self.agent.id,
            self.payload,
            content_type=self.data.content_type,
            sender=self.sender,
            reply_to=reply_to,
            extra_headers=self.data.headers,
            msg_id=msg_id,
        )

    def result(
        self,
        msg_id: str,
        status: SendStatus,
        *,
        reply: AgentMessage | None = None,
        error: str | None = None,
    ) -> SendResult:
        return SendResult(
            id=msg_id, status=status, reply=reply, error=error, agent_status=self.agent.status
        )

    async def accepted(self) -> SendResult:
        return self.result(await self.send(), "accepted")

    async def refuse_to_wait_for_idle(self, *, as_request: bool) -> None:
        """An agent that does not run cannot answer in any wait: say so now rather than after
        the wait. The message is stored all the same, as a request if it was one (its late
        reply goes nowhere), and is handled once the agent runs."""
        agent = self.agent
        idle = not_serving(agent.name, agent.status)
        if idle is None:
            return
        msg_id = await self.send(reply_to=self.gw.nc.new_inbox() if as_request else None)
        raise Conflict(
            f"{idle}: message {msg_id} waits in its inbox and is handled once the agent runs; "
            f"{how_to_deploy(agent.name, agent.status)}",
            details={"message_id": msg_id, "agent": agent.name, "agent_status": agent.status},
        )

    async def confirmed(self, timeout: float) -> SendResult:
        msg_id = new_id()
        async with confirmation(self.gw.nc, self.gw.subjects, msg_id) as outcome:
            await self.send(msg_id)
            status = await outcome(timeout)
        return self.result(msg_id, status)  # type: ignore[arg-type]

    async def replied(self, wait: float) -> SendResult:
        nc = self.gw.nc
        msg_id = new_id()
        try:
            msg = await request_agent(
                nc,
                nc.jetstream(),
                self.gw.subjects,
                self.agent.id,
                self.payload,
                content_type=self.data.content_type,
                sender=self.sender,
                timeout=wait,
                msg_id=msg_id,
                extra_headers=self.data.headers,
            )
        except TimeoutError:
            raise Timeout(
                f"agent {self.agent.name} did not reply within {wait:g}s; the message {msg_id} "
                "stays in its inbox and will still be delivered",
                details={"message_id": msg_id, "agent_status": self.agent.status},
            ) from None
        error = reply_error(msg)
        if error is not None:
            return self.result(msg_id, "error", error=error)
        reply = await claimed_payload(nc.jetstream(), read_message(msg, self.sender))
        return self.result(msg_id, "replied", reply=reply.to_view())


ROUTES = [
    create_agent,
    list_agents,
    get_agent,
    update_agent,
    deploy_agent,
    scale_agent,
    delete_agent,
    send_message,
]
