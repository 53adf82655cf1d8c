"""Pools of agents, and discovery of an agent's instances."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from cortex.contracts.discovery import Discovery, Pick, Resolve
from cortex.contracts.pools import ListPools, PoolRef, PoolSpec, PoolView
from cortex.gateway.state import GatewayDep, IdempotencyKey


@get("/api/v1/pools", tags=["pools"], summary="Every pool, with how many agents it holds")
async def list_pools(gw: GatewayDep, request: Request[Any, Any, Any]) -> list[PoolView]:
    return await gw.ask("lifecycle", "pool.list", ListPools(), list[PoolView], request)


@post("/api/v1/pools", tags=["pools"], status_code=201, summary="Create a pool")
async def create_pool(
    gw: GatewayDep,
    data: JSONBody[PoolSpec],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> PoolView:
    return await gw.ask(
        "lifecycle", "pool.create", data, PoolView, request, idempotency_key=idempotency_key
    )


@get("/api/v1/pools/{name:str}", tags=["pools"], summary="One pool")
async def get_pool(
    gw: GatewayDep, name: FromPath[str], request: Request[Any, Any, Any]
) -> PoolView:
    return await gw.ask("lifecycle", "pool.get", PoolRef(name), PoolView, request)


@delete(
    "/api/v1/pools/{name:str}",
    tags=["pools"],
    status_code=200,
    summary="Delete an empty pool (409 while it holds agents)",
)
async def delete_pool(
    gw: GatewayDep,
    name: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> PoolView:
    return await gw.ask(
        "lifecycle",
        "pool.delete",
        PoolRef(name),
        PoolView,
        request,
        idempotency_key=idempotency_key,
    )


@get(
    "/api/v1/discovery/{ref:str}",
    tags=["discovery"],
    summary="An agent (id, name or name.pool) to its healthy instances and how to reach them",
)
async def discover(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    pick: FromQuery[Pick | None] = None,
) -> Discovery:
    return await gw.ask(
        "registry", "discovery.resolve", Resolve(ref=ref, pick=pick), Discovery, request
    )


ROUTES = [list_pools, create_pool, get_pool, delete_pool, discover]
