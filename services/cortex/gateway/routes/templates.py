"""Agent templates: register, list, versions."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, JSONBody

from cortex.contracts.lifecycle import (
    GetTemplate,
    ListTemplates,
    TemplateSpec,
    TemplateSummary,
    TemplateVersions,
    TemplateView,
)
from cortex.gateway.state import GatewayDep

TAGS = ["templates"]


@post(
    "/api/v1/templates",
    tags=TAGS,
    status_code=201,
    summary="Register a template version (immutable once registered)",
)
async def register_template(
    gw: GatewayDep, data: JSONBody[TemplateSpec], request: Request[Any, Any, Any]
) -> TemplateView:
    return await gw.ask("lifecycle", "template.register", data, TemplateView, request)


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
