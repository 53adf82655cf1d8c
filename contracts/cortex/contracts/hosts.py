"""Host control: what the lifecycle service asks of an agent host on `cortex.host.<id>.<verb>`."""

from __future__ import annotations

from typing import Any

import msgspec


class ReplicaSpec(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    agent_id: str
    agent_name: str
    template: str
    template_version: str
    handler: str
    config: dict[str, Any]
    concurrency: int = 1
    max_deliveries: int = 5
    startup_timeout: float = 30.0
    stop_grace: float = 30.0


class StartReplicas(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`start`: run these replicas. Starting an instance id the host already runs is a no-op."""

    replicas: list[ReplicaSpec]


class ReplicaFailure(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    agent_id: str
    error: str


class StartResult(msgspec.Struct, frozen=True, kw_only=True):
    started: list[str]
    failed: list[ReplicaFailure] = []
    """Replicas that could not start (handler not importable, `on_start` failed)."""


class StopReplicas(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`stop`: stop taking messages, finish in-flight ones within `grace`, `on_stop`, report."""

    instance_ids: list[str]
    grace: float = 30.0


class StopResult(msgspec.Struct, frozen=True, kw_only=True):
    stopping: list[str]
    unknown: list[str] = []
