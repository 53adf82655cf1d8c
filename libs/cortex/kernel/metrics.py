"""Prometheus metrics, declared with what docs/metrics.md says about them.

Every metric of the platform is made here (`counter`, `gauge`, `histogram`) or, when a library
makes it, described here (`documented`), with which process exports it. The catalogue this
builds is what `python -m cortex.kernel.metrics_doc` writes to docs/metrics.md and what the
chart's tests check the dashboards' queries against.

The rules (docs/observability.md, "Metrics"):

- names read `cortex_<area>_<thing>_<unit>` (`cortex_messages_delivery_latency_seconds`);
  counters end in `_total`;
- labels take values from small sets: template, service, partition, status, host, stream.
  Never an agent id, unless `CORTEX_METRICS_PER_AGENT` is on: the metrics that have an `agent`
  label leave it empty otherwise (`AgentLabel`), and Prometheus drops an empty label, so there
  is one series per template whatever the number of agents;
- a gauge of platform-wide state (agents by status, dead letters, inbox backlog, the NATS
  streams) is exported by one process of the platform, the holder of a lease, which removes
  its series when it lets the lease go: summed over every process it is the platform's figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

Kind = Literal["counter", "gauge", "histogram"]

EVERY_PROCESS = "every process"
RUNTIME = "every domain service and agent host"
SERVICES = "every domain service"
GATEWAY = "gateway"
HOSTS = "every agent host"
AGENT = "agent"
"""The label that holds an agent's id, empty unless per-agent series are on."""


def each(service: str) -> str:
    """Exported by every replica of a service, each for what it did itself."""
    return f"{service} (every replica, each for its own work)"


def lease_holder(work: str) -> str:
    """Exported by the one replica that holds the lease on `work`."""
    return f"the replica holding the lease `{work}`: once per platform"


@dataclass(frozen=True, slots=True)
class Documented:
    name: str
    """As Prometheus shows it: a counter with its `_total`, a histogram without suffix."""
    kind: Kind
    help: str
    labels: tuple[str, ...]
    exported_by: str

    @property
    def area(self) -> str:
        """`messages` of `cortex_messages_sent_total`; the prefix of another library's."""
        parts = self.name.split("_")
        return parts[1] if parts[0] == "cortex" else parts[0]

    def series(self) -> dict[str, frozenset[str]]:
        """The names of the series a scrape shows, with their labels."""
        labels = frozenset(self.labels)
        if self.kind == "histogram":
            return {
                f"{self.name}_bucket": labels | {"le"},
                f"{self.name}_sum": labels,
                f"{self.name}_count": labels,
            }
        return {self.name: labels}


CATALOGUE: dict[str, Documented] = {}


def documented(
    name: str, kind: Kind, help: str, labels: Sequence[str] = (), *, exported_by: str
) -> None:
    """Describe a metric that a library makes (the gateway's HTTP metrics, the process's)."""
    if name in CATALOGUE:
        raise ValueError(f"metric {name} is described twice")
    CATALOGUE[name] = Documented(name, kind, " ".join(help.split()), tuple(labels), exported_by)


def counter(name: str, help: str, labels: Sequence[str] = (), *, exported_by: str) -> Counter:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    documented(name, "counter", help, labels, exported_by=exported_by)
    return Counter(name, help, labels)


def gauge(name: str, help: str, labels: Sequence[str] = (), *, exported_by: str) -> Gauge:
    documented(name, "gauge", help, labels, exported_by=exported_by)
    return Gauge(name, help, labels)


def histogram(
    name: str,
    help: str,
    labels: Sequence[str] = (),
    *,
    exported_by: str,
    buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    documented(name, "histogram", help, labels, exported_by=exported_by)
    return Histogram(name, help, labels, buckets=buckets)


class AgentLabel:
    """The value of the `agent` label: the agent's id with `CORTEX_METRICS_PER_AGENT` on,
    else empty, which makes the series the template's."""

    def __init__(self, per_agent: bool) -> None:
        self.per_agent = per_agent

    def __call__(self, agent_id: str) -> str:
        return agent_id if self.per_agent else ""


# prometheus_client's own collectors, in every process; the dashboards use these two.
documented(
    "process_cpu_seconds_total",
    "counter",
    "CPU time of the process (user and system), from prometheus_client's process collector",
    exported_by=EVERY_PROCESS,
)
documented(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory of the process, from prometheus_client's process collector",
    exported_by=EVERY_PROCESS,
)
documented(
    "up",
    "gauge",
    "1 when Prometheus' last scrape of the target succeeded (Prometheus makes it, per target)",
    exported_by="Prometheus itself",
)
