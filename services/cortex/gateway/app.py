"""The Litestar application: routes, auth guard, problem+json errors, OpenAPI, metrics."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar import Litestar, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from cortex.contracts.generate import normalize_descriptions
from cortex.gateway.auth import make_guard
from cortex.gateway.body_limits import BODY_LIMIT
from cortex.gateway.dashboard import DashboardFiles, dashboard_route
from cortex.gateway.document import allow_every_method, declare_responses
from cortex.gateway.metrics import prometheus_config
from cortex.gateway.problems import EXCEPTION_HANDLERS
from cortex.gateway.rate_limit import RateLimits
from cortex.gateway.request_context import RequestContext
from cortex.gateway.routes import (
    agents,
    audit,
    caller,
    changes,
    hosts,
    logs,
    message_events,
    messaging,
    metrics_history,
    platform,
    pools,
    settings,
    state,
    templates,
    tokens,
    workflows,
)
from cortex.gateway.state import Gateway
from cortex.kernel import __version__

API_DESCRIPTION = """\
The CodeValdCortex REST API. Every route except `/health`, `/ready` and `/api/v1/health` needs
`Authorization: Bearer <token>`; reads need the `viewer` role, changes `operator`, platform
administration `admin`. Errors are RFC 9457 problem documents (`application/problem+json`)
whose `code` is one of the platform's error codes and whose `errors` name each bad field.
"""

ROUTES: list[Any] = [
    *platform.ROUTES,
    *caller.ROUTES,
    *settings.ROUTES,
    *metrics_history.ROUTES,
    *tokens.ROUTES,
    *templates.ROUTES,
    *agents.ROUTES,
    *state.ROUTES,
    *messaging.ROUTES,
    *workflows.ROUTES,
    *pools.ROUTES,
    *hosts.ROUTES,
    *logs.ROUTES,
    *changes.ROUTES,
    *message_events.ROUTES,
    *audit.ROUTES,
]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="CodeValdCortex API",
        version=__version__,
        description=API_DESCRIPTION,
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
        security=[{"bearer": []}],
    )


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API routes.

    Built by a separate, never-served app: Litestar's own schema router would add a catch-all
    under its path that answers unknown API paths with an HTML page instead of problem+json.
    """
    app = Litestar(
        route_handlers=ROUTES,
        openapi_config=openapi_config(),
        dependencies={"gw": Provide(lambda: None, sync_to_thread=False)},
        logging_config=None,
    )
    # Defaults of nested Structs (HealthSettings(), ...) stay objects in Litestar's schema.
    # Descriptions in one normal form, as in the JSON Schemas: the text must not depend on the
    # Litestar, msgspec or Python version that rendered it.
    document = declare_responses(msgspec.to_builtins(app.openapi_schema.to_schema()))
    return dict(normalize_descriptions(document))


@get("/api/v1/openapi.json", include_in_schema=False)
async def openapi_json() -> dict[str, Any]:
    return openapi_document()


def create_app(gateway: Gateway) -> Litestar:
    prometheus = prometheus_config()
    return Litestar(
        route_handlers=[
            *ROUTES,
            openapi_json,
            dashboard_route(DashboardFiles.from_settings(gateway.settings)),
        ],
        dependencies={"gw": Provide(lambda: gateway, sync_to_thread=False)},
        guards=[
            make_guard(
                gateway.tokens, RateLimits(gateway.settings.rate_limit, gateway.settings.rate_burst)
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[allow_every_method],
        openapi_config=None,
        # The request's correlation id and span first, so that they cover the rest.
        middleware=[RequestContext(), prometheus.middleware],
        logging_config=None,  # structlog is set up by the process, not by Litestar
        # Only a message's payload can need more (MESSAGE_BODY_LIMIT, on those routes).
        request_max_body_size=BODY_LIMIT,
        debug=False,
    )
