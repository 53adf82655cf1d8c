"""The gateway's HTTP metrics: Litestar's Prometheus middleware makes them, named here."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig

from cortex.kernel.metrics import GATEWAY, documented

APP_NAME = "cortex-gateway"
PREFIX = "cortex_gateway"
LABELS = ["method", "path", "status_code", "app_name"]
"""What the middleware labels every series with; `path` is the route's template
(`/api/v1/agents/{ref}`), so the label's values are bounded by the routes."""


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name=APP_NAME,
        prefix=PREFIX,
        group_path=True,
        exclude_unhandled_paths=True,
    )


documented(
    f"{PREFIX}_requests_total", "counter", "HTTP requests answered", LABELS, exported_by=GATEWAY
)
documented(
    f"{PREFIX}_request_duration_seconds",
    "histogram",
    "Time to answer an HTTP request",
    LABELS,
    exported_by=GATEWAY,
)
documented(
    f"{PREFIX}_requests_in_progress",
    "gauge",
    "HTTP requests being answered (`status_code` reads 200 for all of them)",
    LABELS,
    exported_by=GATEWAY,
)
documented(
    f"{PREFIX}_requests_error_total",
    "counter",
    "HTTP requests whose handling raised past the error handlers",
    LABELS,
    exported_by=GATEWAY,
)
