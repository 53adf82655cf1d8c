"""What the reconciler should do for one agent, given what runs: a pure function."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .domain import ACTIVE
from .drivers.port import ObservedInstance


@dataclass(frozen=True, slots=True)
class AgentPlan:
    start: int
    stop: list[ObservedInstance]
    ready: int
    """Replicas healthy and running."""
    present: int
    """Replicas running or starting, not on their way out."""
    settled: bool
    """Nothing is being started or stopped for the agent."""


def plan_agent(
    *,
    status: str,
    replicas: int,
    instances: Sequence[ObservedInstance],
    pending: int,
    stopping: Collection[str],
    config_changed_at: datetime | None = None,
    started_with: Mapping[str, datetime | None] | None = None,
) -> AgentPlan:
    """`instances`: the agent's instances not gone; `pending`: starts asked for but not yet
    seen; `stopping`: ids a stop was sent for. Replicas that run an older config than the one
    changed at `config_changed_at` are stopped and replaced (recreate: messages wait in the
    inbox). `started_with`: the config change each replica was started with, where known;
    otherwise a replica registered before the change runs an old config."""
    desired = replicas if status in ACTIVE else 0
    known = started_with or {}

    def outdated(instance: ObservedInstance) -> bool:
        if not config_changed_at:
            return False
        if instance.id in known:
            # A start asked for just before a change registers just after it: what counts
            # is the config it was given.
            given = known[instance.id]
            return given is None or given < config_changed_at
        return bool(instance.started_at and instance.started_at < config_changed_at)

    stale = [i for i in instances if outdated(i) and i.state != "stopping" and i.id not in stopping]
    live = [
        i for i in instances if i.state != "stopping" and i.id not in stopping and i not in stale
    ]
    leaving = len(instances) - len(live) - len(stale)
    ready = sum(1 for i in live if i.health == "healthy" and i.state == "running")
    present = len(live) + pending
    start = max(0, desired - present) if status in ACTIVE else 0
    extra = len(live) - desired
    # Stop the least useful first: unhealthy, then still starting, then the newest.
    ranked = sorted(live, key=lambda i: (i.health == "healthy", i.state == "running", i.id))
    surplus = ranked[:extra] if extra > 0 else []
    stop = stale + surplus
    settled = pending == 0 and leaving == 0 and not stop and start == 0
    return AgentPlan(
        start=start, stop=stop, ready=ready, present=present - len(surplus), settled=settled
    )
