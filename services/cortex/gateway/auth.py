"""Bearer-token auth: every route needs a role unless it is marked public.

A route states the least role it needs in its `opt` (`{"role": "operator"}`); without one, reads
(GET, HEAD) need `viewer` and everything else `operator`. `{"public": True}` opens a route.
What cannot be undone (purging an agent or a dead letter) needs `admin`.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from cortex.kernel.errors import Forbidden, Unauthorized
from cortex.kernel.tokens import Principal, TokenRegistry

from .rate_limit import RateLimits

_READS = {"GET", "HEAD", "OPTIONS"}


def required_role(connection: ASGIConnection[Any, Any, Any, Any], opt: dict[str, Any]) -> str:
    if "role" in opt:
        return str(opt["role"])
    return "viewer" if connection.scope.get("method", "GET") in _READS else "operator"


ADMIN = {"role": "admin"}
"""The `opt` of a route whose change cannot be undone (a purge)."""


def require(connection: ASGIConnection[Any, Any, Any, Any], role: str, what: str) -> None:
    """For a route whose role depends on its input: 403 unless the caller's token has `role`."""
    principal = principal_of(connection)
    if principal is None or not principal.may(role):
        name = principal.name if principal else "anonymous"
        held = principal.role if principal else "none"
        raise Forbidden(f"token {name!r} has role {held}; {what} needs {role}")


def make_guard(tokens: TokenRegistry, limits: RateLimits) -> Any:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if handler.opt.get("public"):
            return
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required: Authorization: Bearer <token>")
        principal = tokens.authenticate(token.strip())
        if principal is None:
            raise Unauthorized("the bearer token is not valid")
        limits.take(principal.name)
        role = required_role(connection, handler.opt)
        if not principal.may(role):
            raise Forbidden(
                f"token {principal.name!r} has role {principal.role}; this needs {role}"
            )
        connection.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]

    return guard


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    found = connection.scope.get("principal")
    return found if isinstance(found, Principal) else None
