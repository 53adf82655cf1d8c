"""An agent's state document: read, replace (with `If-Match`), merge-patch, history."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response, get, patch, put
from litestar.params import FromPath

from cortex.contracts.state import (
    GetState,
    PatchState,
    PutState,
    StateHistory,
    StateView,
    StateWrite,
)
from cortex.gateway.auth import principal_of
from cortex.gateway.state import GatewayDep, IdempotencyKey
from cortex.kernel.errors import Invalid

TAGS = ["state"]
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: Request[Any, Any, Any]) -> int | None:
    """The version `If-Match` asks for: `"3"` (an ETag this API gave out)."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    found = _ETAG.match(header.strip())
    if not found:
        raise Invalid.field("header.If-Match", 'must be the ETag of a version, e.g. "3"')
    return int(found[1])


async def _json_body(request: Request[Any, Any, Any]) -> Any:
    try:
        return msgspec.json.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise Invalid.field("$", f"not JSON: {exc}") from None


def _writer(request: Request[Any, Any, Any]) -> str:
    principal = principal_of(request)
    return f"api:{principal.name}" if principal else "api"


def _written(result: StateWrite) -> Response[StateWrite]:
    return Response(result, headers={"ETag": etag(result.state.version)})


@get(
    "/api/v1/agents/{ref:str}/state",
    tags=TAGS,
    summary="The agent's state document; its version is the ETag",
)
async def get_state(
    gw: GatewayDep, ref: FromPath[str], request: Request[Any, Any, Any]
) -> Response[StateView]:
    async with gw.agent_id(ref, request) as agent_id:
        view = await gw.ask("registry", "state.get", GetState(agent_id), StateView, request)
    return Response(view, headers={"ETag": etag(view.version)})


@put(
    "/api/v1/agents/{ref:str}/state",
    tags=TAGS,
    summary="Replace the state document (any JSON); with If-Match only if still that version",
)
async def put_state(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Response[StateWrite]:
    async with gw.agent_id(ref, request) as agent_id:
        cmd = PutState(
            agent_id=agent_id,
            value=await _json_body(request),
            writer=_writer(request),
            expected_version=if_match(request),
        )
        return _written(
            await gw.ask(
                "registry", "state.put", cmd, StateWrite, request, idempotency_key=idempotency_key
            )
        )


@patch(
    "/api/v1/agents/{ref:str}/state",
    tags=TAGS,
    summary="Merge-patch the state document (RFC 7396); If-Match as for PUT",
)
async def patch_state(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Response[StateWrite]:
    async with gw.agent_id(ref, request) as agent_id:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise Invalid.field("$", "a merge patch is a JSON object")
        cmd = PatchState(
            agent_id=agent_id,
            patch=body,
            writer=_writer(request),
            expected_version=if_match(request),
        )
        return _written(
            await gw.ask(
                "registry", "state.patch", cmd, StateWrite, request, idempotency_key=idempotency_key
            )
        )


@get(
    "/api/v1/agents/{ref:str}/state/history",
    tags=TAGS,
    summary="The current document and earlier versions, newest first",
)
async def state_history(
    gw: GatewayDep, ref: FromPath[str], request: Request[Any, Any, Any]
) -> StateHistory:
    async with gw.agent_id(ref, request) as agent_id:
        return await gw.ask("registry", "state.history", GetState(agent_id), StateHistory, request)


ROUTES = [get_state, put_state, patch_state, state_history]
