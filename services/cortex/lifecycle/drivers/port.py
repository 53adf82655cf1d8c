"""The runtime driver port: observe what runs, start replicas, stop replicas.

The reconciler decides how many replicas each agent needs; a driver decides where they go and
makes it so. `host` places them on agent hosts; `kubernetes` makes a pod of each. One contract
suite (tests/integration/test_runtime_driver_contract.py) holds both to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cortex.contracts.lifecycle import TemplateView
from cortex.contracts.registry import Health, ReplicaState

from ..projections import AgentRecord


@dataclass(frozen=True, slots=True)
class ObservedInstance:
    id: str
    agent_id: str
    host_id: str
    health: Health
    state: ReplicaState
    started_at: datetime | None = None
    """When the replica started: one started before its agent's config changed is stale."""


@dataclass(frozen=True, slots=True)
class ObservedHost:
    id: str
    health: Health
    replicas: int
    capacity: int


@dataclass(slots=True)
class Observation:
    instances: list[ObservedInstance] = field(default_factory=list)
    hosts: list[ObservedHost] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    """Why an agent's replica is not running yet, by agent id, where the runtime says
    (a pod that cannot be scheduled, an image that cannot be pulled): its status reason."""
    failures: list[StartFailure] = field(default_factory=list)
    """Starts seen failing since the last observation (a runtime that starts in the
    background reports them here, each once)."""
    blind: str | None = None
    """Set when the driver cannot see what runs (its API unreachable or refusing): nothing
    is started or stopped on its runtime, and this is its agents' status reason."""


@dataclass(frozen=True, slots=True)
class StartRequest:
    agent: AgentRecord
    template: TemplateView
    count: int
    config: dict[str, Any]
    """The agent's config when the start was decided: the record may change while the start
    is under way, and a replica must run the config its start was counted with."""
    config_at: datetime | None
    """When that config was set (None: at creation)."""


@dataclass(frozen=True, slots=True)
class Placement:
    agent_id: str
    instance_id: str
    host_id: str


@dataclass(frozen=True, slots=True)
class StartFailure:
    agent_id: str
    error: str
    agent_fault: bool
    """True when the agent itself cannot start (bad handler, failing on_start): the agent turns
    `failed`. False when the place was the problem (host unreachable or full): retried."""


class RuntimeDriver(Protocol):
    runtime: str
    """The template runtime this driver serves."""

    async def observe(self) -> Observation: ...

    async def start(
        self,
        requests: Sequence[StartRequest],
        observation: Observation,
        pending: Mapping[str, int],
    ) -> tuple[list[Placement], list[StartFailure]]:
        """Place and start replicas; `pending` counts starts per place not yet observed."""
        ...

    async def stop(self, instances: Sequence[ObservedInstance], grace: float) -> None: ...

    async def release(self, wanted: set[str]) -> None:
        """Free what the runtime keeps for agents (by id) other than `wanted` once none of
        their replicas is left: their config objects in Kubernetes, for instance."""
        ...
