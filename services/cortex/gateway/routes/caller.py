"""Who the caller's token is."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from cortex.contracts.auth import Caller
from cortex.gateway.auth import principal_of
from cortex.kernel.errors import Unauthorized


@get(
    "/api/v1/whoami",
    tags=["platform"],
    summary="The name and role of the request's token",
)
async def whoami(request: Request[Any, Any, Any]) -> Caller:
    principal = principal_of(request)
    if principal is None:  # the guard lets no request without a token this far
        raise Unauthorized("a bearer token is required: Authorization: Bearer <token>")
    return Caller(name=principal.name, role=principal.role)


ROUTES = [whoami]
