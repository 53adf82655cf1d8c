"""The NATS servers' figures as Prometheus metrics, on the gateway's admin port at
`/metrics/nats`.

nats-server has no Prometheus endpoint of its own, only JSON monitoring pages: `/varz` (the
server), `/jsz` (JetStream, its streams and consumers) and `/connz` (client connections). On
every scrape this reads them from each server of `CORTEX_NATS_MONITOR_URLS` (every node of a
cluster) and answers in Prometheus' text format, labelled with the server's name.

What it keeps of them is bounded: the platform's own streams and their durable consumers, and
the platform's connections counted by connection name (`cortex-registry`, `cortex-host`, ...).
A replicated stream is on every node that holds a copy; only the node that leads it reports it,
so a sum over the servers counts each stream once.

One gateway replica answers, the one holding the lease `gateway.nats-metrics`; the others
answer with no metrics, so that a Prometheus scraping every gateway sees each figure once.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
from nats.aio.client import Client as NATS
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cortex.contracts.subjects import Subjects
from cortex.kernel.leases import LeaseBucket, Singleton, holder_name
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import CATALOGUE, GATEWAY, Kind, documented, lease_holder
from cortex.kernel.service.admin import Receive, Scope, Send
from cortex.kernel.settings import Settings
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

PATH = "/metrics/nats"
LEASE = "gateway.nats-metrics"
TIMEOUT = 2.0
"""Seconds one monitoring page may take: less than a scrape's timeout."""
CONNECTIONS_READ = 4096
"""Connections `/connz` lists per server (its default is 1024)."""

EXPORTED_BY = f"{GATEWAY} (admin port, `{PATH}`): {lease_holder(LEASE)}"
SERVER = ["server"]
STREAM = ["server", "stream"]
CONSUMER = ["server", "stream", "consumer"]
CLIENT = ["server", "client"]

# (name, kind, help, labels); the value's source is in `_server`, `_streams` and `_clients`.
_DEFINED: list[tuple[str, Kind, str, list[str]]] = [
    ("cortex_nats_up", "gauge", "1 when the server's monitoring port answered", ["url"]),
    (
        "cortex_nats_server_info",
        "gauge",
        "Always 1: the server's version and cluster as labels",
        ["server", "version", "cluster"],
    ),
    ("cortex_nats_server_connections", "gauge", "Client connections", SERVER),
    ("cortex_nats_server_subscriptions", "gauge", "Subscriptions", SERVER),
    ("cortex_nats_server_routes", "gauge", "Routes to the other servers of its cluster", SERVER),
    (
        "cortex_nats_server_slow_consumers_total",
        "counter",
        "Clients the server cut off because they did not read fast enough",
        SERVER,
    ),
    ("cortex_nats_server_received_messages_total", "counter", "Messages received", SERVER),
    ("cortex_nats_server_sent_messages_total", "counter", "Messages sent", SERVER),
    ("cortex_nats_server_received_bytes_total", "counter", "Bytes received", SERVER),
    ("cortex_nats_server_sent_bytes_total", "counter", "Bytes sent", SERVER),
    ("cortex_nats_server_cpu_percent", "gauge", "CPU of the server process, % of a core", SERVER),
    ("cortex_nats_server_memory_bytes", "gauge", "Resident memory of the server process", SERVER),
    ("cortex_nats_jetstream_storage_bytes", "gauge", "JetStream file storage in use", SERVER),
    ("cortex_nats_jetstream_memory_bytes", "gauge", "JetStream memory storage in use", SERVER),
    (
        "cortex_nats_jetstream_api_requests_total",
        "counter",
        "JetStream API requests the server handled",
        SERVER,
    ),
    (
        "cortex_nats_jetstream_api_errors_total",
        "counter",
        "JetStream API requests answered with an error",
        SERVER,
    ),
    ("cortex_nats_stream_messages", "gauge", "Messages a stream holds", STREAM),
    ("cortex_nats_stream_bytes", "gauge", "Bytes a stream holds", STREAM),
    ("cortex_nats_stream_consumers", "gauge", "Consumers of a stream", STREAM),
    (
        "cortex_nats_consumer_pending_messages",
        "gauge",
        "Messages of the stream not yet delivered to the durable consumer",
        CONSUMER,
    ),
    (
        "cortex_nats_consumer_ack_pending_messages",
        "gauge",
        "Messages delivered to the durable consumer and not yet acknowledged",
        CONSUMER,
    ),
    (
        "cortex_nats_consumer_redelivered_messages",
        "gauge",
        "Messages not yet acknowledged that were delivered more than once",
        CONSUMER,
    ),
    (
        "cortex_nats_consumer_waiting_pulls",
        "gauge",
        "Pull requests of the durable consumer waiting for messages",
        CONSUMER,
    ),
    (
        "cortex_nats_consumer_delivered_messages_total",
        "counter",
        "Deliveries the durable consumer made, redeliveries included",
        CONSUMER,
    ),
    (
        "cortex_nats_client_connections",
        "gauge",
        "The platform's connections to the server, by connection name",
        CLIENT,
    ),
    (
        "cortex_nats_client_pending_bytes",
        "gauge",
        "Bytes the server holds for the platform's connections, not yet written to them",
        CLIENT,
    ),
]
for _name, _kind, _help, _labels in _DEFINED:
    documented(_name, _kind, _help, _labels, exported_by=EXPORTED_BY)


class _Families:
    """The metric families of one scrape, filled as the pages are read."""

    def __init__(self) -> None:
        self._families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, kind, _, labels in _DEFINED:
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            self._families[name] = family(name, CATALOGUE[name].help, labels=labels)

    def add(self, name: str, labels: Iterable[str], value: float) -> None:
        self._families[name].add_metric(list(labels), value)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families.values())


def platform_streams(subjects: Subjects) -> frozenset[str]:
    """The JetStream streams of the platform of `subjects`, key-value and object buckets too."""
    return frozenset(
        {spec.name for spec in subjects.streams()}
        | {f"KV_{subjects.leases_bucket}", f"KV_{subjects.dedupe_bucket}"}
        | {f"OBJ_{subjects.payload_bucket}"}
    )


class NatsMetrics:
    def __init__(self, settings: Settings, connection: Callable[[], NATS]) -> None:
        """`connection()`: the gateway's NATS connection; raises `Unavailable` until it is
        there."""
        self._settings = settings
        self._connection = connection
        self._subjects = settings.subjects()
        self._urls = [u.strip().rstrip("/") for u in settings.nats_monitor_urls.split(",")]
        self._urls = [u for u in self._urls if u]
        self._streams = platform_streams(self._subjects)
        self._client_prefix = f"{self._subjects.root}-"
        self._lease: Singleton | None = None
        self._task: asyncio.Task[None] | None = None
        self.held = False

    @property
    def enabled(self) -> bool:
        return bool(self._urls)

    def start(self) -> None:
        """Take part in the lease in the background (NATS may not be there yet)."""
        self._task = asyncio.create_task(self._join(), name="nats-metrics-lease")

    async def _join(self) -> None:
        settings = self._settings
        leases = LeaseBucket(holder_name())
        while True:
            try:
                await leases.open(
                    self._connection().jetstream(),
                    self._subjects.leases_bucket,
                    ttl=settings.lease_ttl,
                    description="Which replica does the work of a service that runs once at a "
                    "time.",
                    replicas=settings.nats_replicas,
                )
                break
            except Exception as exc:  # the gateway is still connecting, or JetStream starting
                log.debug("nats metrics lease not open yet", error=str(exc) or repr(exc))
                await asyncio.sleep(0.5)
        self._lease = Singleton(
            leases, LEASE, ttl=settings.lease_ttl, begin=self._begin, end=self._end
        )
        self._lease.start()

    async def _begin(self) -> None:
        self.held = True

    async def _end(self) -> None:
        self.held = False

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._lease is not None:
            await self._lease.stop()

    # --- the endpoint ------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self.render() if self.held else b""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def render(self) -> bytes:
        families = _Families()
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            pages = await asyncio.gather(*(self._read(http, url) for url in self._urls))
        for url, page in zip(self._urls, pages, strict=True):
            families.add("cortex_nats_up", [url], 1 if page else 0)
            if page is not None:
                varz, jsz, connz = page
                self._server(families, varz)
                self._streams_of(families, str(varz.get("server_name", "")), jsz)
                self._clients(families, str(varz.get("server_name", "")), connz)
        return generate_latest(families)

    async def _read(
        self, http: httpx.AsyncClient, url: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        try:
            varz, jsz, connz = await asyncio.gather(
                http.get(f"{url}/varz"),
                http.get(f"{url}/jsz", params={"consumers": "true", "config": "true"}),
                http.get(f"{url}/connz", params={"limit": str(CONNECTIONS_READ)}),
            )
            for page in (varz, jsz, connz):
                page.raise_for_status()
            return varz.json(), jsz.json(), connz.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("nats monitoring not read", url=url, error=str(exc) or repr(exc))
            return None

    def _server(self, families: _Families, varz: dict[str, Any]) -> None:
        server = [str(varz.get("server_name", ""))]
        cluster = str((varz.get("cluster") or {}).get("name", ""))
        families.add("cortex_nats_server_info", [*server, str(varz.get("version")), cluster], 1)
        for name, key in (
            ("cortex_nats_server_connections", "connections"),
            ("cortex_nats_server_subscriptions", "subscriptions"),
            ("cortex_nats_server_routes", "routes"),
            ("cortex_nats_server_slow_consumers_total", "slow_consumers"),
            ("cortex_nats_server_received_messages_total", "in_msgs"),
            ("cortex_nats_server_sent_messages_total", "out_msgs"),
            ("cortex_nats_server_received_bytes_total", "in_bytes"),
            ("cortex_nats_server_sent_bytes_total", "out_bytes"),
            ("cortex_nats_server_cpu_percent", "cpu"),
            ("cortex_nats_server_memory_bytes", "mem"),
        ):
            families.add(name, server, float(varz.get(key) or 0))
        stats = (varz.get("jetstream") or {}).get("stats") or {}
        api = stats.get("api") or {}
        families.add("cortex_nats_jetstream_storage_bytes", server, float(stats.get("storage", 0)))
        families.add("cortex_nats_jetstream_memory_bytes", server, float(stats.get("memory", 0)))
        families.add("cortex_nats_jetstream_api_requests_total", server, api.get("total", 0))
        families.add("cortex_nats_jetstream_api_errors_total", server, api.get("errors", 0))

    def _streams_of(self, families: _Families, server: str, jsz: dict[str, Any]) -> None:
        for account in jsz.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                name = str(stream.get("name", ""))
                leader = (stream.get("cluster") or {}).get("leader", server)
                if name not in self._streams or leader != server:
                    continue
                state = stream.get("state") or {}
                labels = [server, name]
                families.add("cortex_nats_stream_messages", labels, state.get("messages", 0))
                families.add("cortex_nats_stream_bytes", labels, state.get("bytes", 0))
                families.add("cortex_nats_stream_consumers", labels, state.get("consumer_count", 0))
                for consumer in stream.get("consumer_detail") or []:
                    self._consumer(families, server, name, leader, consumer)

    def _consumer(
        self, families: _Families, server: str, stream: str, leader: str, info: dict[str, Any]
    ) -> None:
        # Ephemeral consumers (ordered readers) get a new name with every start: not kept.
        if not (info.get("config") or {}).get("durable_name"):
            return
        if (info.get("cluster") or {}).get("leader", leader) != server:
            return
        labels = [server, stream, str(info.get("name", ""))]
        delivered = (info.get("delivered") or {}).get("consumer_seq", 0)
        for name, value in (
            ("cortex_nats_consumer_pending_messages", info.get("num_pending", 0)),
            ("cortex_nats_consumer_ack_pending_messages", info.get("num_ack_pending", 0)),
            ("cortex_nats_consumer_redelivered_messages", info.get("num_redelivered", 0)),
            ("cortex_nats_consumer_waiting_pulls", info.get("num_waiting", 0)),
            ("cortex_nats_consumer_delivered_messages_total", delivered),
        ):
            families.add(name, labels, value)

    def _clients(self, families: _Families, server: str, connz: dict[str, Any]) -> None:
        connections: Tally[str] = Tally()
        pending: Tally[str] = Tally()
        for conn in connz.get("connections") or []:
            name = str(conn.get("name", ""))
            if not name.startswith(self._client_prefix):
                continue
            connections[name] += 1
            pending[name] += int(conn.get("pending_bytes", 0))
        for name, count in sorted(connections.items()):
            families.add("cortex_nats_client_connections", [server, name], count)
            families.add("cortex_nats_client_pending_bytes", [server, name], pending[name])
