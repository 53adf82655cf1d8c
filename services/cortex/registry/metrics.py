"""The registry's Prometheus metrics (`cortex_registry_...`)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram

from cortex.contracts.registry import Health
from cortex.registry.domain import HostState

HEALTHS: tuple[Health, ...] = ("healthy", "unhealthy", "gone")

HOSTS = Gauge("cortex_registry_hosts", "Registered agent hosts by health", ["health"])
INSTANCES = Gauge("cortex_registry_instances", "Registered agent instances by health", ["health"])
HEARTBEATS = Counter(
    "cortex_registry_heartbeats_total", "Heartbeat messages received (one per chunk)"
)
HEARTBEATS_REFUSED = Counter(
    "cortex_registry_heartbeats_refused_total",
    "Heartbeat messages dropped because they could not be read",
)
HEARTBEAT_DURATION = Histogram(
    "cortex_registry_heartbeat_duration_seconds",
    "Time to handle one heartbeat message, appends included",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

STATE_WRITES = Counter(
    "cortex_registry_state_writes_total",
    "Writes of agent state documents by outcome: applied, superseded (an unconditional write "
    "older than the current version), conflict (expected version not current)",
    ["outcome"],
)


def count_health(hosts: dict[str, HostState]) -> None:
    host_counts = Tally(h.health for h in hosts.values())
    instance_counts = Tally(i.health for h in hosts.values() for i in h.instances.values())
    for health in HEALTHS:
        HOSTS.labels(health).set(host_counts[health])
        INSTANCES.labels(health).set(instance_counts[health])
