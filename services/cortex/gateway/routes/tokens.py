"""API tokens, for admins: create (the token is shown once), list, revoke.

The gateway changes the same tokens file as `cortex tokens`; every gateway replica that reads
that file takes a change at its next request.
"""

from __future__ import annotations

from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from cortex.contracts.auth import CreatedToken, NewToken, TokenInfo, TokenList
from cortex.gateway.auth import ADMIN
from cortex.gateway.state import GatewayDep
from cortex.kernel.errors import NotFound
from cortex.kernel.tokens import create_token, read_tokens_file, revoke_token

TAGS = ["tokens"]


@get("/api/v1/tokens", opt=ADMIN, tags=TAGS, summary="API tokens (names and roles)")
async def list_tokens(gw: GatewayDep) -> TokenList:
    records = read_tokens_file(gw.settings.effective_tokens_file).tokens
    return TokenList(
        items=[TokenInfo(name=t.name, role=t.role, created_at=t.created_at) for t in records]
    )


@post(
    "/api/v1/tokens",
    opt=ADMIN,
    tags=TAGS,
    summary="Create an API token; the token is in this answer only",
)
async def new_token(gw: GatewayDep, data: JSONBody[NewToken]) -> CreatedToken:
    token, record = create_token(gw.settings.effective_tokens_file, data.name, data.role)
    return CreatedToken(
        name=record.name, role=record.role, created_at=record.created_at, token=token
    )


@delete("/api/v1/tokens/{name:str}", opt=ADMIN, tags=TAGS, summary="Revoke an API token")
async def revoke(gw: GatewayDep, name: FromPath[str]) -> None:
    if not revoke_token(gw.settings.effective_tokens_file, name):
        raise NotFound(f"no token named {name!r}")


ROUTES = [list_tokens, new_token, revoke]
