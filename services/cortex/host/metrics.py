"""An agent host's Prometheus metrics: the messages its replicas handle (`cortex_messages_...`,
by template), and the host itself (`cortex_host_...`, by host id).

Each host counts what its own replicas did, so a sum over the hosts is the platform's figure.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import get_args

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cortex.contracts.hosts import ReplicaSpec
from cortex.contracts.registry import ReplicaState
from cortex.kernel.ids import utcnow
from cortex.kernel.metrics import AGENT, CATALOGUE, HOSTS, AgentLabel, counter, documented
from cortex.kernel.metrics import histogram as make_histogram

from .usage import rss_bytes

BY_TEMPLATE = ["template", AGENT]

DELIVERED = counter(
    "cortex_messages_delivered_total",
    "Messages that reached an agent's handler (redeliveries count again; direct requests to "
    "one replica too)",
    BY_TEMPLATE,
    exported_by=HOSTS,
)
ACKED = counter(
    "cortex_messages_acked_total",
    "Messages whose handler succeeded (the message is then acknowledged)",
    BY_TEMPLATE,
    exported_by=HOSTS,
)
FAILED = counter(
    "cortex_messages_failed_total",
    "Handler runs that raised (the message comes back later, is answered with the error, or "
    "goes to the dead-letter queue)",
    BY_TEMPLATE,
    exported_by=HOSTS,
)
DEAD_LETTERED = counter(
    "cortex_messages_dead_lettered_total",
    "Messages given up on and put in the dead-letter queue",
    BY_TEMPLATE,
    exported_by=HOSTS,
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DELIVERY_LATENCY = make_histogram(
    "cortex_messages_delivery_latency_seconds",
    "From a message's creation (its Cortex-Created-At header, set by the sender) to the start "
    "of its handler; a redelivery counts the whole wait",
    BY_TEMPLATE,
    buckets=LATENCY_BUCKETS,
    exported_by=HOSTS,
)
HANDLER_DURATION = make_histogram(
    "cortex_messages_handler_duration_seconds",
    "Time an agent's on_message took, failed runs included",
    BY_TEMPLATE,
    buckets=LATENCY_BUCKETS,
    exported_by=HOSTS,
)
# Read at scrape time by `HostGauges`.
HOST_REPLICAS = "cortex_host_replicas"
HOST_INFLIGHT = "cortex_host_inflight_messages"
HOST_CPU = "cortex_host_cpu_seconds_total"
HOST_MEMORY = "cortex_host_resident_memory_bytes"
documented(
    HOST_REPLICAS, "gauge", "Replicas on the host by state", ["host", "state"], exported_by=HOSTS
)
documented(
    HOST_INFLIGHT,
    "gauge",
    "Messages the host's replicas are handling now",
    ["host"],
    exported_by=HOSTS,
)
documented(HOST_CPU, "counter", "CPU time the host process used", ["host"], exported_by=HOSTS)
documented(HOST_MEMORY, "gauge", "Resident memory of the host process", ["host"], exported_by=HOSTS)


class ReplicaMetrics:
    """The series one replica counts into, looked up once rather than per message."""

    def __init__(self, spec: ReplicaSpec, agent: AgentLabel) -> None:
        labels = (spec.template, agent(spec.agent_id))
        self.delivered: Counter = DELIVERED.labels(*labels)
        self.acked: Counter = ACKED.labels(*labels)
        self.failed: Counter = FAILED.labels(*labels)
        self.dead_lettered: Counter = DEAD_LETTERED.labels(*labels)
        self.latency: Histogram = DELIVERY_LATENCY.labels(*labels)
        self.duration: Histogram = HANDLER_DURATION.labels(*labels)

    def started(self, created_at: datetime) -> float:
        """A handler starts on a message created at `created_at`; returns the time to give
        `finished`."""
        self.delivered.inc()
        # Another machine's clock may be ahead: a message is not delivered before it was sent.
        self.latency.observe(max(0.0, (utcnow() - created_at).total_seconds()))
        return time.perf_counter()

    def finished(self, began: float, *, ok: bool) -> None:
        self.duration.observe(time.perf_counter() - began)
        (self.acked if ok else self.failed).inc()


class HostGauges(Collector):
    """The host process at scrape time, labelled with its host id."""

    def __init__(self, host_id: str, states: Callable[[], list[tuple[ReplicaState, int]]]) -> None:
        """`states()`: (state, messages in flight) of every replica."""
        self._host = host_id
        self._states = states
        REGISTRY.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        states = self._states()
        by_state = Tally(state for state, _ in states)
        replicas = _gauge(HOST_REPLICAS)
        for state in get_args(ReplicaState):
            replicas.add_metric([self._host, state], by_state[state])
        yield replicas
        inflight = _gauge(HOST_INFLIGHT)
        inflight.add_metric([self._host], sum(n for _, n in states))
        yield inflight
        cpu = CounterMetricFamily(HOST_CPU, CATALOGUE[HOST_CPU].help, labels=["host"])
        cpu.add_metric([self._host], time.process_time())
        yield cpu
        memory = _gauge(HOST_MEMORY)
        memory.add_metric([self._host], rss_bytes())
        yield memory

    def close(self) -> None:
        """No longer part of this process's scrapes (a test process runs many hosts)."""
        REGISTRY.unregister(self)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


def _gauge(name: str) -> GaugeMetricFamily:
    doc = CATALOGUE[name]
    return GaugeMetricFamily(doc.name, doc.help, labels=doc.labels)
