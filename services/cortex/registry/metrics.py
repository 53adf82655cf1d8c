"""The registry's Prometheus metrics (`cortex_registry_...`)."""

from __future__ import annotations

from collections import Counter as Tally

from cortex.contracts.registry import Health
from cortex.kernel.metrics import counter, each, gauge, histogram, lease_holder
from cortex.registry.domain import HostState

HEALTHS: tuple[Health, ...] = ("healthy", "unhealthy", "gone")

EVERY_REPLICA = each("registry")
HEALTH_CLOCK = f"registry: {lease_holder('registry.health')}"

HOSTS = gauge(
    "cortex_registry_hosts",
    "Registered agent hosts by health",
    ["health"],
    exported_by=HEALTH_CLOCK,
)
INSTANCES = gauge(
    "cortex_registry_instances",
    "Registered agent instances (replicas) by health",
    ["health"],
    exported_by=HEALTH_CLOCK,
)
HEARTBEATS = counter(
    "cortex_registry_heartbeats_total",
    "Heartbeat messages received (one per chunk; every replica receives every heartbeat)",
    exported_by=EVERY_REPLICA,
)
HEARTBEATS_REFUSED = counter(
    "cortex_registry_heartbeats_refused_total",
    "Heartbeat messages dropped because they could not be read",
    exported_by=EVERY_REPLICA,
)
HEARTBEAT_DURATION = histogram(
    "cortex_registry_heartbeat_duration_seconds",
    "Time to handle one heartbeat message, appends included",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    exported_by=EVERY_REPLICA,
)

STATE_WRITES = counter(
    "cortex_registry_state_writes_total",
    "Writes of agent state documents by outcome: applied, superseded (an unconditional write "
    "older than the current version), conflict (expected version not current)",
    ["outcome"],
    exported_by=EVERY_REPLICA,
)


def count_health(hosts: dict[str, HostState]) -> None:
    host_counts = Tally(h.health for h in hosts.values())
    instance_counts = Tally(i.health for h in hosts.values() for i in h.instances.values())
    for health in HEALTHS:
        HOSTS.labels(health).set(host_counts[health])
        INSTANCES.labels(health).set(instance_counts[health])


def forget_health() -> None:
    """This replica no longer keeps the health clock: the one that does now reports."""
    HOSTS.clear()
    INSTANCES.clear()
