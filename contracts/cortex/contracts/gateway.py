"""HTTP bodies of the gateway's platform endpoints (`/health`, `/ready`, `/api/v1/status`, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from cortex.contracts.errors import Violation
from cortex.contracts.events import QuarantinedEvent


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"] = "ok"
    version: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    checks: dict[str, bool]
    """Each condition readiness waits for, e.g. `nats` (connected) or `caught_up`."""


class ServiceInstance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: str
    metadata: dict[str, str] = {}
    """What the instance says of itself: `host`, `pid`, `admin_url`, `store`."""


class ServiceStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """The platform's name for the service (`lifecycle`), without the NATS prefix."""
    versions: list[str]
    instances: list[ServiceInstance]
    endpoints: list[str]
    """The NATS subjects it answers."""
    quarantined: list[QuarantinedEvent] = []
    """Stored events its instances skip because they cannot decode them (the latest 20 each,
    oldest position first); `cortex_events_quarantined_total` counts them all."""


class StreamStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    messages: int
    bytes: int
    consumers: int


class NatsStatus(msgspec.Struct, frozen=True, kw_only=True):
    connected: bool
    url: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    jetstream: bool = False
    streams: list[StreamStatus] = []


class StoreStatus(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    kind: str
    """`sqlite` or `arangodb`."""
    location: str
    """Where the events live, credentials removed."""


class Status(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    time: datetime
    services: list[ServiceStatus]
    nats: NatsStatus
    stores: list[StoreStatus]


class EndpointMetrics(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    endpoint: str
    subject: str
    requests: int
    errors: int
    average_ms: float


class MetricsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON digest of what the services report through `$SRV.STATS` and JetStream."""

    time: datetime
    endpoints: list[EndpointMetrics]
    streams: list[StreamStatus]
    gateway_requests: int
    gateway_errors: int


class MetricSeries(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """`messages_per_second`, `delivery_latency_seconds`, `agents`, `host_cpu_cores`,
    `host_memory_bytes` or `executions_per_second`."""
    unit: str
    labels: dict[str, str]
    """What tells this series from the others of its name: `status` of `agents`, `host` of
    the host series, `quantile` (0.5, 0.95, 0.99) of the latency."""
    values: list[float | None]
    """One value per time of the history; null where nothing was measured."""


class MetricsHistory(msgspec.Struct, frozen=True, kw_only=True):
    """The platform's main figures over a recent window, for charts."""

    source: Literal["gateway", "prometheus"]
    """`gateway`: sampled by the answering gateway replica since it started (no Prometheus
    needed); `prometheus`: read from CORTEX_PROMETHEUS_URL."""
    step: float
    """Seconds between two times."""
    times: list[float]
    """Unix times (seconds) of the values, oldest first."""
    series: list[MetricSeries]


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details (`application/problem+json`), the body of every HTTP error."""

    type: str
    """`https://codevald.dev/problems/<code>`."""
    title: str
    status: int
    detail: str
    code: str
    """The platform's error code (`not_found`, `invalid`, ...)."""
    instance: str | None = None
    errors: list[Violation] = []
    """For `invalid`: each field (JSON path) and what is wrong with it."""
    details: dict[str, Any] = {}
