"""The lifecycle service's Prometheus metrics (`cortex_lifecycle_...`).

What the reconciler sees of every agent is the platform's state, so only the replica that acts
(the holder of the lease `lifecycle.reconciler`) reports it; the others report nothing."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from cortex.kernel.metrics import counter, each, gauge, histogram, lease_holder

from .projections import AgentRecord

RECONCILER = f"lifecycle: {lease_holder('lifecycle.reconciler')}"

PASS_SECONDS = histogram(
    "cortex_lifecycle_reconcile_duration_seconds",
    "Time of one reconciliation pass (every replica observes; one acts)",
    exported_by=each("lifecycle"),
)
AGENTS = gauge(
    "cortex_lifecycle_agents",
    "Agents by template and status (terminated ones until they are purged)",
    ["template", "status"],
    exported_by=RECONCILER,
)
DESIRED = gauge(
    "cortex_lifecycle_replicas_desired",
    "Replicas the agents of a template want (agents deploying, running or scaling)",
    ["template"],
    exported_by=RECONCILER,
)
READY = gauge(
    "cortex_lifecycle_replicas_ready",
    "Replicas of a template's agents that run and are healthy",
    ["template"],
    exported_by=RECONCILER,
)
STARTS = counter(
    "cortex_lifecycle_replica_starts_total",
    "Replica starts the reconciler asked of agent hosts, failed ones included",
    ["template"],
    exported_by=RECONCILER,
)
RESTARTS = counter(
    "cortex_lifecycle_replica_restarts_total",
    "Starts that replace a replica, failed ones included: of an agent that was running (a "
    "replica failed, stopped or its host went away), or another try after a failed start",
    ["template"],
    exported_by=RECONCILER,
)
START_FAILURES = counter(
    "cortex_lifecycle_replica_start_failures_total",
    "Replicas an agent host could not start (handler not importable, on_start failed, host "
    "full or unreachable)",
    ["template"],
    exported_by=RECONCILER,
)


class Tallies:
    """What one reconciliation pass counted, reported once the pass is over."""

    def __init__(self) -> None:
        self.desired: Tally[str] = Tally()
        self.ready: Tally[str] = Tally()

    def replicas(self, template: str, desired: int, ready: int) -> None:
        """One agent's: what it wants, what runs."""
        self.desired[template] += desired
        self.ready[template] += ready

    def report(self, acting: bool, agents: Iterable[AgentRecord]) -> None:
        """Set the gauges when this replica acts; otherwise leave them to the one that does."""
        for metric in (AGENTS, DESIRED, READY):
            metric.clear()
        if not acting:
            return
        for (template, status), count in Tally((a.template, a.status) for a in agents).items():
            AGENTS.labels(template, status).set(count)
        for template in self.desired.keys() | self.ready.keys():
            DESIRED.labels(template).set(self.desired[template])
            READY.labels(template).set(self.ready[template])
            # Series at 0 from the start: a rate over them reads 0, not "no data".
            for counted in (STARTS, RESTARTS, START_FAILURES):
                counted.labels(template)
