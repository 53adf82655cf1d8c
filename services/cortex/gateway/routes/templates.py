"""Agent templates: register, list, versions."""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from cortex.contracts.lifecycle import (
    GetTemplate,
    ListTemplates,
    TemplateRegistration,
    TemplateSpec,
    TemplateSummary,
    TemplateVersions,
    TemplateView,
)
from cortex.gateway.state import GatewayDep, IdempotencyKey

TAGS = ["templates"]
T = TypeVar("T")
UNCHANGED = "This version was registered already with the same definition: nothing changed"


def registered(view: T, *, created: bool) -> Response[T]:
    """201 for a version this request registered; 200 when it was there already, so that a
    client (and the CLI) can tell "registered" from "unchanged"."""
    return Response(view, status_code=201 if created else 200)


@post(
    "/api/v1/templates",
    tags=TAGS,
    status_code=201,
    summary="Register a template version (immutable once registered)",
    description="Besides its schema, a template is refused (422, each field named) unless: "
    "runtime `host` names its agent class in `handler`, a class this platform may load "
    "(`CORTEX_AGENT_PATH`, `CORTEX_AGENT_MODULES`); runtime `kubernetes` names an `image` "
    "and the agent class in it; "
    "each of `topics` is dot-separated letters, digits, `-` and `_`; `config_schema` is a JSON "
    "Schema and `default_config` satisfies it.",
    responses={200: ResponseSpec(TemplateView, description=UNCHANGED)},
)
async def register_template(
    gw: GatewayDep,
    data: JSONBody[TemplateSpec],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Response[TemplateView]:
    done = await gw.ask(
        "lifecycle",
        "template.register",
        data,
        TemplateRegistration,
        request,
        idempotency_key=idempotency_key,
    )
    return registered(done.template, created=done.created)


@get("/api/v1/templates", tags=TAGS, summary="Every template, with its versions")
async def list_templates(gw: GatewayDep, request: Request[Any, Any, Any]) -> list[TemplateSummary]:
    return await gw.ask(
        "lifecycle", "template.list", ListTemplates(), list[TemplateSummary], request
    )


@get("/api/v1/templates/{name:str}", tags=TAGS, summary="Every version of one template")
async def get_template(
    gw: GatewayDep, name: FromPath[str], request: Request[Any, Any, Any]
) -> TemplateVersions:
    return await gw.ask("lifecycle", "template.get", GetTemplate(name), TemplateVersions, request)


ROUTES = [register_template, list_templates, get_template]
