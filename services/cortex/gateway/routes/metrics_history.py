"""The platform's main figures over the last 15 minutes or hour, for charts."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.params import QueryParameter

from cortex.contracts.gateway import MetricsHistory
from cortex.gateway.history import WINDOWS
from cortex.gateway.state import GatewayDep


@get(
    "/api/v1/metrics/history",
    tags=["platform"],
    summary="Messages/s, delivery latency, agents by status, host CPU and memory, executions/s",
    description=(
        "From the gateway's own samples (every CORTEX_METRICS_HISTORY_INTERVAL seconds since "
        "the answering replica started) or, with CORTEX_PROMETHEUS_URL, from Prometheus."
    ),
)
async def metrics_history(
    gw: GatewayDep,
    window: Annotated[Literal["15m", "1h"], QueryParameter(description="How far back")] = "15m",
) -> MetricsHistory:
    return await gw.history.window(WINDOWS[window])


ROUTES = [metrics_history]
