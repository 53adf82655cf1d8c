"""Templates, agent names and agents as event-sourced aggregates: pure state and decisions.

Streams: `template-<name>` (every version of a template), `agentname-<name>` (who holds a name),
`agent-<id>` (one agent). Nothing here does I/O; `service.py` loads, decides and appends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from cortex.contracts.lifecycle import (
    AgentCreated,
    AgentDeployRequested,
    AgentNameClaimed,
    AgentNameReleased,
    AgentPurged,
    AgentScaled,
    AgentStatus,
    AgentStatusChanged,
    AgentTerminated,
    AgentTerminateRequested,
    AgentUpdated,
    TemplateRegistered,
    TemplateSpec,
)
from cortex.contracts.pools import PoolCreated, PoolDeleted, PoolSpec
from cortex.kernel.errors import Conflict, NotFound
from cortex.kernel.events import EventCodec
from cortex.kernel.versions import is_new_version

CODEC = EventCodec(
    TemplateRegistered,
    AgentNameClaimed,
    AgentNameReleased,
    AgentCreated,
    AgentUpdated,
    AgentDeployRequested,
    AgentScaled,
    AgentStatusChanged,
    AgentTerminateRequested,
    AgentTerminated,
    AgentPurged,
    PoolCreated,
    PoolDeleted,
)

ACTIVE: frozenset[str] = frozenset({"deploying", "running", "scaling"})
"""Statuses in which the agent's replicas should run."""


def template_stream(name: str) -> str:
    return f"template-{name}"


def name_stream(name: str) -> str:
    return f"agentname-{name}"


def agent_stream(agent_id: str) -> str:
    return f"agent-{agent_id}"


def pool_stream(name: str) -> str:
    return f"pool-{name}"


# --- pools -------------------------------------------------------------------------------


class PoolState(msgspec.Struct):
    exists: bool = False


def evolve_pool(state: PoolState, event: Any) -> PoolState:
    if isinstance(event, PoolCreated):
        return PoolState(exists=True)
    if isinstance(event, PoolDeleted):
        return PoolState(exists=False)
    return state


def create_pool(state: PoolState, spec: PoolSpec) -> list[PoolCreated]:
    if state.exists:
        raise Conflict(f"a pool named {spec.name!r} exists already", details={"name": spec.name})
    return [PoolCreated(name=spec.name, description=spec.description, labels=dict(spec.labels))]


def delete_pool(state: PoolState, name: str, members: int) -> list[PoolDeleted]:
    if not state.exists:
        raise NotFound(f"no pool {name!r}")
    if members:
        raise Conflict(
            f"pool {name!r} still has {members} agent(s); move or purge them first",
            details={"agents": members},
        )
    return [PoolDeleted(name=name)]


# --- templates ---------------------------------------------------------------------------


class TemplateState(msgspec.Struct):
    versions: dict[str, TemplateSpec] = {}


def evolve_template(state: TemplateState, event: Any) -> TemplateState:
    if isinstance(event, TemplateRegistered):
        return TemplateState(versions={**state.versions, event.spec.version: event.spec})
    return state


def register_template(state: TemplateState, spec: TemplateSpec) -> list[TemplateRegistered]:
    """Versions are immutable: the same spec again is a no-op, a different one a conflict."""
    existing = state.versions.get(spec.version)
    if is_new_version(existing, spec, kind="template", name=spec.name, version=spec.version):
        return [TemplateRegistered(spec=spec)]
    return []


# --- agent names -------------------------------------------------------------------------


class NameState(msgspec.Struct):
    holder: str | None = None
    claimed_at: datetime | None = None


def evolve_name(state: NameState, event: Any) -> NameState:
    if isinstance(event, AgentNameClaimed):
        return NameState(holder=event.agent_id, claimed_at=event.claimed_at)
    if isinstance(event, AgentNameReleased):
        return NameState(holder=None)
    return state


CLAIM_IN_FLIGHT = timedelta(seconds=30)
"""How long a claim whose agent does not exist yet is taken for a create under way: the claim
and the agent's creation are two appends, and a competing create must not take the name in
between. After that the claim counts as left behind by a crash."""


def holds_name(state: NameState, holder: AgentState, now: datetime) -> bool:
    """Whether the name's holder keeps it: its agent exists and was not purged, or its create
    is still under way. `holder` is the holder's state from its own stream."""
    if state.holder is None:
        return False
    if holder.exists:
        return not holder.purged
    return state.claimed_at is not None and now - state.claimed_at < CLAIM_IN_FLIGHT


def claim_name(
    state: NameState, name: str, agent_id: str, holder_exists: bool, now: datetime
) -> list[AgentNameClaimed]:
    """A name is free when nobody holds it, or when its holder never got created (a crash
    between claiming and creating must not lock the name forever)."""
    if state.holder is not None and holder_exists:
        raise Conflict(f"an agent named {name!r} exists already", details={"name": name})
    return [AgentNameClaimed(name=name, agent_id=agent_id, claimed_at=now)]


# --- agents ------------------------------------------------------------------------------


class AgentState(msgspec.Struct):
    exists: bool = False
    id: str = ""
    name: str = ""
    template: str = ""
    template_version: str = ""
    config: dict[str, Any] = {}
    labels: dict[str, str] = {}
    pool: str | None = None
    replicas: int = 0
    status: AgentStatus = "created"
    status_reason: str | None = None
    grace: float = 30.0
    purge: bool = False
    purged: bool = False


def evolve_agent(state: AgentState, event: Any) -> AgentState:
    if isinstance(event, AgentCreated):
        return AgentState(
            exists=True,
            id=event.agent_id,
            name=event.name,
            template=event.template,
            template_version=event.template_version,
            config=event.config,
            labels=event.labels,
            replicas=event.replicas,
            pool=event.pool,
        )
    if isinstance(event, AgentUpdated):
        return msgspec.structs.replace(
            state,
            config=event.config if event.config is not None else state.config,
            labels=event.labels if event.labels is not None else state.labels,
            pool=state.pool if event.pool is None else (event.pool or None),
        )
    if isinstance(event, AgentDeployRequested | AgentScaled):
        return msgspec.structs.replace(state, replicas=event.replicas)
    if isinstance(event, AgentStatusChanged):
        return msgspec.structs.replace(state, status=event.status, status_reason=event.reason)
    if isinstance(event, AgentTerminateRequested):
        return msgspec.structs.replace(state, grace=event.grace, purge=event.purge)
    if isinstance(event, AgentPurged):
        return msgspec.structs.replace(state, purged=True)
    return state


def must_exist(state: AgentState, ref: str) -> None:
    if not state.exists or state.purged:
        raise NotFound(f"no agent {ref!r}")


def _to(state: AgentState, status: AgentStatus, reason: str | None = None) -> AgentStatusChanged:
    return AgentStatusChanged(status=status, previous=state.status, reason=reason)


def create_agent(created: AgentCreated, deploy: bool) -> list[msgspec.Struct]:
    events: list[msgspec.Struct] = [created]
    if deploy:
        events += [
            AgentDeployRequested(replicas=created.replicas),
            AgentStatusChanged(status="deploying", previous="created"),
        ]
    return events


def update_agent(
    state: AgentState,
    config: dict[str, Any] | None,
    labels: dict[str, str] | None,
    pool: str | None = None,
) -> list[msgspec.Struct]:
    """`pool`: None leaves it as it is, "" takes the agent out of its pool."""
    if state.status == "terminating":
        raise Conflict(f"agent {state.name} is terminating")
    config = None if config == state.config else config
    labels = None if labels == state.labels else labels
    pool = None if pool is None or (pool or None) == state.pool else pool
    if config is None and labels is None and pool is None:
        return []
    return [AgentUpdated(config=config, labels=labels, pool=pool)]


def deploy_agent(state: AgentState, replicas: int | None) -> list[msgspec.Struct]:
    if state.status in ACTIVE:
        raise Conflict(
            f"agent {state.name} is {state.status} already; scale it instead",
            details={"status": state.status},
        )
    if state.status == "terminating":
        raise Conflict(
            f"agent {state.name} is terminating; deploy it once it is terminated",
            details={"status": state.status},
        )
    return [
        AgentDeployRequested(replicas=state.replicas if replicas is None else replicas),
        _to(state, "deploying"),
    ]


def scale_agent(state: AgentState, replicas: int) -> list[msgspec.Struct]:
    if state.status in ("terminating", "terminated"):
        raise Conflict(
            f"agent {state.name} is {state.status}; deploy it to run it again",
            details={"status": state.status},
        )
    if replicas == state.replicas:
        return []
    events: list[msgspec.Struct] = [AgentScaled(replicas=replicas, previous=state.replicas)]
    if state.status in ("running", "scaling"):
        events.append(_to(state, "scaling"))
    return events


def terminate_agent(state: AgentState, grace: float, purge: bool) -> list[msgspec.Struct]:
    if state.status == "terminated":
        if purge:
            return [AgentPurged()]
        raise Conflict(
            f"agent {state.name} is terminated already", details={"status": state.status}
        )
    if state.status == "terminating" and (state.purge or not purge):
        return []
    events: list[msgspec.Struct] = [AgentTerminateRequested(grace=grace, purge=purge)]
    if state.status != "terminating":
        events.append(_to(state, "terminating"))
    return events


# --- what the reconciler observed --------------------------------------------------------


def observed(
    state: AgentState, *, ready: int, present: int, settled: bool, failure: str | None
) -> list[msgspec.Struct]:
    """Status changes that follow from the replicas actually seen.

    `present`: replicas running or starting (not stopping); `settled`: nothing is being started
    or stopped for this agent right now; `failure`: why a replica could not start.
    """
    if state.purged or not state.exists:
        return []
    if state.status == "terminating":
        if present == 0 and settled:
            events: list[msgspec.Struct] = [AgentTerminated(), _to(state, "terminated")]
            return [*events, AgentPurged()] if state.purge else events
        return []
    if state.status in ACTIVE and failure:
        return [_to(state, "failed", failure)]
    if (
        state.status in ("deploying", "scaling")
        and settled
        and ready == state.replicas
        and present == state.replicas
    ):
        return [_to(state, "running")]
    return []
