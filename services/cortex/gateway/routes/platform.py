"""Health, readiness, platform status and the metrics digest."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import REGISTRY

from cortex.contracts.events import QuarantinedEvent
from cortex.contracts.gateway import (
    EndpointMetrics,
    Health,
    MetricsSummary,
    NatsStatus,
    Readiness,
    ServiceInstance,
    ServiceStatus,
    Status,
    StoreStatus,
    StreamStatus,
)
from cortex.gateway.state import Gateway, GatewayDep
from cortex.kernel import __version__
from cortex.kernel.bus.discovery import scatter
from cortex.kernel.ids import utcnow

PUBLIC = {"public": True}
OPEN: list[dict[str, list[str]]] = [{}]
"""OpenAPI: these routes need no token."""


@get(
    "/health",
    opt=PUBLIC,
    security=OPEN,
    tags=["platform"],
    summary="Liveness of the gateway process",
)
async def health() -> Health:
    return Health(version=__version__)


@get(
    "/api/v1/health",
    opt=PUBLIC,
    security=OPEN,
    tags=["platform"],
    summary="Liveness, under the API prefix",
)
async def api_health() -> Health:
    return Health(version=__version__)


@get(
    "/ready",
    opt=PUBLIC,
    security=OPEN,
    tags=["platform"],
    summary="Ready to serve: connected to NATS and, if named, every service and agent host seen",
    responses={
        503: ResponseSpec(Readiness, description="Not ready yet: `checks` says what is missing")
    },
)
async def ready(gw: GatewayDep) -> Response[Readiness]:
    checks = gw.readiness()
    ok = all(checks.values())
    return Response(Readiness(ready=ok, checks=checks), status_code=200 if ok else 503)


_quarantined = msgspec.json.Decoder(list[QuarantinedEvent])


@get(
    "/api/v1/status",
    tags=["platform"],
    summary="Services seen on NATS, their instances, the NATS server, the event stores and "
    "the stored events services skip because they cannot decode them",
)
async def status(gw: GatewayDep) -> Status:
    nc = gw.nc
    infos = await scatter(nc, "$SRV.INFO")
    services: dict[str, dict[str, Any]] = {}
    stores: dict[tuple[str, str], StoreStatus] = {}
    prefix = gw.subjects.root + "-"
    for info in infos:
        name = str(info.get("name", ""))
        if not name.startswith(prefix):
            continue  # another platform (another prefix) on the same NATS
        meta = {str(k): str(v) for k, v in (info.get("metadata") or {}).items()}
        short = meta.get("service", name[len(prefix) :])
        entry = services.setdefault(
            short, {"versions": set(), "instances": [], "endpoints": set(), "quarantined": {}}
        )
        # Each instance lists what it met; the replicas of a service mostly meet the same.
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            for event in _quarantined.decode(meta.pop("quarantined", "[]")):
                entry["quarantined"].setdefault(event.event_id, event)
        entry["versions"].add(str(info.get("version", "")))
        entry["instances"].append(
            ServiceInstance(
                id=str(info.get("id", "")), version=str(info.get("version", "")), metadata=meta
            )
        )
        entry["endpoints"].update(str(e.get("subject", "")) for e in info.get("endpoints") or [])
        if "store" in meta:
            stores[(short, meta.get("store_location", ""))] = StoreStatus(
                service=short, kind=meta["store"], location=meta.get("store_location", "")
            )
    return Status(
        version=__version__,
        time=utcnow(),
        services=[
            ServiceStatus(
                name=name,
                versions=sorted(e["versions"]),
                instances=sorted(e["instances"], key=lambda i: i.id),
                endpoints=sorted(e["endpoints"]),
                quarantined=sorted(e["quarantined"].values(), key=lambda q: q.position),
            )
            for name, e in sorted(services.items())
        ],
        nats=await nats_status(gw),
        stores=sorted(stores.values(), key=lambda s: (s.service, s.location)),
    )


async def nats_status(gw: Gateway) -> NatsStatus:
    nc = gw.nc
    server_info: dict[str, Any] = getattr(nc, "_server_info", {}) or {}
    url = nc.connected_url
    streams = await stream_statuses(gw)
    return NatsStatus(
        connected=nc.is_connected,
        url=f"{url.scheme}://{url.hostname}:{url.port}" if url else None,
        server_name=server_info.get("server_name"),
        server_version=_version(nc.connected_server_version),
        jetstream=bool(server_info.get("jetstream")),
        streams=streams,
    )


async def stream_statuses(gw: Gateway) -> list[StreamStatus]:
    js = gw.nc.jetstream()
    names = {spec.name for spec in gw.subjects.streams()}
    out = []
    for info in await js.streams_info():
        if info.config.name in names:
            out.append(
                StreamStatus(
                    name=info.config.name,
                    messages=info.state.messages,
                    bytes=info.state.bytes,
                    consumers=info.state.consumer_count,
                )
            )
    return sorted(out, key=lambda s: s.name)


@get(
    "/api/v1/metrics",
    tags=["platform"],
    summary="A JSON digest of request counts, errors and latency per endpoint, and streams",
)
async def metrics(gw: GatewayDep) -> MetricsSummary:
    prefix = gw.subjects.root + "-"
    totals: dict[tuple[str, str], list[float]] = {}
    subjects: dict[tuple[str, str], str] = {}
    for stats in await scatter(gw.nc, "$SRV.STATS"):
        name = str(stats.get("name", ""))
        if not name.startswith(prefix):
            continue
        service = (stats.get("metadata") or {}).get("service", name[len(prefix) :])
        for ep in stats.get("endpoints") or []:
            data = ep.get("data") or {}
            key = (service, str(ep.get("name", "")))
            requests = float(data.get("requests", ep.get("num_requests", 0)))
            errors = float(data.get("errors", ep.get("num_errors", 0)))
            total_ms = float(data.get("average_ms", 0.0)) * requests
            acc = totals.setdefault(key, [0.0, 0.0, 0.0])
            acc[0] += requests
            acc[1] += errors
            acc[2] += total_ms
            subjects[key] = str(ep.get("subject", ""))
    requests, errors = gateway_counts()
    return MetricsSummary(
        time=utcnow(),
        endpoints=[
            EndpointMetrics(
                service=svc,
                endpoint=ep,
                subject=subjects[(svc, ep)],
                requests=int(r),
                errors=int(e),
                average_ms=round(t / r, 3) if r else 0.0,
            )
            for (svc, ep), (r, e, t) in sorted(totals.items())
        ],
        streams=await stream_statuses(gw),
        gateway_requests=requests,
        gateway_errors=errors,
    )


def gateway_counts() -> tuple[int, int]:
    """Requests this gateway replica answered, and how many of them were errors (>= 400)."""
    requests = errors = 0
    for metric in REGISTRY.collect():
        if metric.name != "cortex_gateway_requests":
            continue
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            requests += int(sample.value)
            if int(sample.labels.get("status_code", 200)) >= 400:
                errors += int(sample.value)
    return requests, errors


ROUTES = [health, api_health, ready, status, metrics]


def _version(version: Any) -> str | None:
    """nats-py's server version object as `2.15.1`."""
    if version is None:
        return None
    parts = [getattr(version, name, None) for name in ("major", "minor", "patch")]
    return ".".join(str(p) for p in parts) if None not in parts else str(version)
