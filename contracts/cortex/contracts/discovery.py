"""Discovery: from an agent's id, name or `<name>.<pool>` to its healthy instances and how to
reach them (`discovery.resolve` on the registry)."""

from __future__ import annotations

from typing import Literal

import msgspec

from cortex.contracts.registry import Health

Pick = Literal["round_robin", "least_loaded"]


class Resolve(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`discovery.resolve`."""

    ref: str
    """An agent id, a name, or `<name>.<pool>`."""
    pick: Pick | None = None
    """Also choose one instance: in turn, or the one with the fewest messages in flight."""


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    host_id: str
    health: Health
    inflight: int
    direct: str
    """Core NATS subject for a request to this very instance (not persisted, not retried)."""


class Discovery(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    name: str
    pool: str | None = None
    status: str
    inbox: str
    """JetStream subject of the agent's inbox: persisted, delivered to one of its replicas."""
    endpoints: list[Endpoint]
    """Healthy instances only."""
    picked: Endpoint | None = None
