"""The registry service: agent hosts, agent instances (running replicas) and their health.

Hosts report on `cortex.hb.<host_id>` (core NATS, one batched heartbeat per interval); queries
are NATS requests to `cortex.registry.<verb>`; events go out on `cortex.evt.registry.<type>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from cortex.contracts.names import PageSize

Health = Literal["healthy", "unhealthy", "gone"]
"""healthy: heard from recently; unhealthy: heartbeats missed (or the replica failed); gone:
missed for long enough that it is taken for dead and replaced."""

ReplicaState = Literal["starting", "running", "stopping", "failed"]


class ReplicaReport(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    agent_id: str
    agent_name: str
    state: ReplicaState
    inflight: int = 0
    """Messages being handled right now."""
    busy: bool = False
    """Every handler slot is taken: slow, not dead (heartbeats keep coming)."""
    handled: int = 0
    failures: int = 0
    last_error: str | None = None
    started_at: datetime


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """What a host publishes every interval, for itself and its replicas.

    A host with many replicas splits one beat into `chunks` messages; each stands on its own.
    `stopped` lists replicas that ended since the last beat (repeated for a few beats).
    """

    host_id: str
    boot_id: str
    """New at every start of the host process: replicas of an earlier boot are gone."""
    hostname: str
    pid: int
    started_at: datetime
    sent_at: datetime
    interval: float
    cpu_percent: float
    rss_bytes: int
    capacity: int = 0
    """Most replicas the host takes; 0: no limit."""
    replica_count: int = 0
    """Replicas on the host over all chunks of this beat."""
    replicas: list[ReplicaReport] = []
    stopped: list[str] = []
    chunk: int = 0
    chunks: int = 1


class HostView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    hostname: str
    pid: int
    health: Health
    registered_at: datetime
    last_seen: datetime | None = None
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    replicas: int = 0
    capacity: int = 0


class InstanceView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    agent_id: str
    agent_name: str
    host_id: str
    health: Health
    state: ReplicaState
    inflight: int = 0
    busy: bool = False
    """Every handler slot taken: working on long messages, not dead."""
    handled: int = 0
    failures: int = 0
    last_error: str | None = None
    registered_at: datetime
    last_seen: datetime | None = None


class ListHosts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`host.list`."""

    status: Health | None = None


class ListInstances(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`instance.list`, ordered by id; `after` is the `next` of the previous page."""

    agent: str | None = None
    """An agent id."""
    host: str | None = None
    status: Health | None = None
    limit: PageSize = 1000
    after: str | None = None


class InstancePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[InstanceView]
    next: str | None = None


# --- events (stream `host-<host_id>`: a host and the instances it runs) ---------------------


class HostRegistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "host.registered"
    host_id: str
    boot_id: str
    hostname: str
    pid: int
    started_at: datetime
    capacity: int = 0


class HostHealthChanged(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "host.health_changed"
    health: Health
    previous: Health
    reason: str


class InstanceRegistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "instance.registered"
    instance_id: str
    agent_id: str
    agent_name: str
    started_at: datetime


class InstanceHealthChanged(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "instance.health_changed"
    instance_id: str
    health: Health
    previous: Health
    reason: str


class InstanceDeregistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "instance.deregistered"
    instance_id: str
    reason: str


class HostDeregistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "host.deregistered"
    reason: str


class HostRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`host.get`."""

    id: str


class InstanceRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`instance.get`."""

    id: str
