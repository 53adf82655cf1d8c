"""An agent's state document: read, replace (with `If-Match`), merge-patch, history."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, Response, get, patch, put
from litestar.datastructures import ResponseHeader
from litestar.params import Body, FromPath

from cortex.contracts.state import (
    GetState,
    PatchState,
    PutState,
    StateHistory,
    StateView,
    StateWrite,
)
from cortex.gateway.auth import principal_of
from cortex.gateway.document import optional_header, problem
from cortex.gateway.state import GatewayDep, IdempotencyKey
from cortex.kernel.errors import Invalid

TAGS = ["state"]
ETAG_PATTERN = r'^(?:W/)?"?([0-9]+)"?$'
_ETAG = re.compile(ETAG_PATTERN)

# Checked by `expected_version`, which says what is wrong in words of its own.
IfMatch = Annotated[
    str | None,
    optional_header(
        "If-Match",
        ETAG_PATTERN,
        'Write only if the document is still at this version: its ETag ("3")',
    ),
]
STALE = {412: problem(412)}
ETAG = [
    ResponseHeader(
        name="ETag",
        documentation_only=True,
        required=True,
        description='The version of the document (`"3"`): what `If-Match` takes',
    )
]


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(header: str | None) -> int | None:
    """The version `If-Match` asks for: `"3"` (an ETag this API gave out)."""
    if header is None:
        return None
    found = _ETAG.match(header.strip())
    if not found:
        raise Invalid.field("header.If-Match", 'must be the ETag of a version, e.g. "3"')
    return int(found[1])


def _writer(request: Request[Any, Any, Any]) -> str:
    principal = principal_of(request)
    return f"api:{principal.name}" if principal else "api"


def _written(result: StateWrite) -> Response[StateWrite]:
    return Response(result, headers={"ETag": etag(result.state.version)})


@get(
    "/api/v1/agents/{ref:str}/state",
    tags=TAGS,
    summary="The agent's state document; its version is the ETag",
    response_headers=ETAG,
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
    response_headers=ETAG,
    responses=STALE,
)
async def put_state(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    data: Annotated[Any, Body(description="The new document: any JSON value")],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[StateWrite]:
    async with gw.agent_id(ref, request) as agent_id:
        cmd = PutState(
            agent_id=agent_id,
            value=data,
            writer=_writer(request),
            expected_version=expected_version(if_match),
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
    response_headers=ETAG,
    responses=STALE,
)
async def patch_state(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, Any], Body(description="The merge patch: a JSON object")],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[StateWrite]:
    async with gw.agent_id(ref, request) as agent_id:
        cmd = PatchState(
            agent_id=agent_id,
            patch=data,
            writer=_writer(request),
            expected_version=expected_version(if_match),
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
