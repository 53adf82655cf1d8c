"""The settings the gateway runs with, secrets hidden."""

from __future__ import annotations

from litestar import get

from cortex.gateway.state import GatewayDep
from cortex.kernel.settings import Settings


@get(
    "/api/v1/settings",
    tags=["platform"],
    summary="The gateway's settings as it runs (CORTEX_* variables), secrets hidden",
)
async def running_settings(gw: GatewayDep) -> Settings:
    return gw.settings.hidden()


ROUTES = [running_settings]
