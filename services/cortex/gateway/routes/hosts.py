"""Agent hosts and agent instances (running replicas), from the registry."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromQuery, QueryParameter

from cortex.contracts.registry import Health, HostView, InstancePage, ListHosts, ListInstances
from cortex.gateway.document import problem
from cortex.gateway.state import GatewayDep

TAGS = ["hosts"]


@get("/api/v1/hosts", tags=TAGS, summary="Agent hosts and their health")
async def list_hosts(
    gw: GatewayDep, request: Request[Any, Any, Any], status: FromQuery[Health | None] = None
) -> list[HostView]:
    return await gw.ask("registry", "host.list", ListHosts(status=status), list[HostView], request)


@get(
    "/api/v1/instances",
    tags=TAGS,
    summary="Agent instances (running replicas) by agent, host and health",
    responses={404: problem(404, "No agent of that id or name (`agent`)")},
)
async def list_instances(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    agent: Annotated[str | None, QueryParameter(description="Agent id or name")] = None,
    host: FromQuery[str | None] = None,
    status: FromQuery[Health | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=5000)] = 1000,
    after: FromQuery[str | None] = None,
) -> InstancePage:
    agent_id = None
    if agent:
        agent_id = (await gw.agent(agent, request)).id
    query = ListInstances(agent=agent_id, host=host, status=status, limit=limit, after=after)
    return await gw.ask("registry", "instance.list", query, InstancePage, request)


ROUTES = [list_hosts, list_instances]
