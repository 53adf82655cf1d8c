"""The correlation id and the span of every API request.

The caller's `X-Request-Id`, or a new id, is the request's correlation id: the request's log
lines carry it, every service call and agent message the request makes sends it on
(`cortex.kernel.context`), and the response returns it in `X-Request-Id`. The request is a
server span named after its route (`POST /api/v1/agents/{ref}/messages`), continuing the
trace of a caller that sent `traceparent`.
"""

from __future__ import annotations

import re
from typing import cast

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry.trace import SpanKind, StatusCode

from cortex.kernel.context import incoming
from cortex.kernel.ids import new_id

REQUEST_ID = "x-request-id"
ACCEPTED_ID = re.compile(r"[\x21-\x7e]{1,200}")
"""A caller's id is taken when it is 1 to 200 visible ASCII characters; another is replaced
by a new one: it goes into NATS headers and every log line of the request."""


def request_id(sent: str | None) -> str:
    """The request's correlation id: the caller's if acceptable, else a new one."""
    return sent if sent is not None and ACCEPTED_ID.fullmatch(sent) else new_id()


class RequestContext(ASGIMiddleware):
    """The outermost middleware of every route. Probes (`/health`, `/ready`) are left out:
    they would be a trace every few seconds that nobody reads."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = ("^/health$", "^/ready$")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        http = cast("HTTPScope", scope)  # `scopes` lets nothing else through
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in http["headers"]
        }
        correlation_id = request_id(headers.get(REQUEST_ID))
        method, route = http["method"], http["path_template"]
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message).add(REQUEST_ID, correlation_id)
            await send(message)

        with incoming(
            headers,
            f"{method} {route}",
            SpanKind.SERVER,
            correlation_id=correlation_id,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": http["path"],
            },
        ) as span:
            try:
                await next_app(scope, receive, answer)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
