"""The lifecycle read models: templates by name and version, agents by id and by name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.lifecycle import (
    AgentCreated,
    AgentDeployRequested,
    AgentPurged,
    AgentScaled,
    AgentStatus,
    AgentStatusChanged,
    AgentUpdated,
    TemplateRegistered,
    TemplateView,
)
from cortex.contracts.pools import PoolCreated, PoolDeleted
from cortex.kernel.errors import NotFound
from cortex.kernel.projection import StructProjection
from cortex.kernel.versions import all_versions, find_version

from .domain import CODEC


class Templates(msgspec.Struct):
    by_name: dict[str, list[TemplateView]] = {}


class TemplatesProjection(StructProjection[Templates]):
    name = "templates"
    version = 1
    model_type = Templates

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, TemplateRegistered):
            view = TemplateView(
                **msgspec.structs.asdict(data.spec),
                registered_at=event.occurred_at,
                registered_by=event.actor,
            )
            self.model.by_name.setdefault(data.spec.name, []).append(view)

    def get(self, ref: str) -> TemplateView:
        """`name` (the latest version) or `name@version`."""
        return find_version(self.model.by_name.get(ref.partition("@")[0]), ref, kind="template")

    def versions(self, name: str) -> list[TemplateView]:
        return all_versions(self.model.by_name.get(name), name, kind="template")


class AgentRecord(msgspec.Struct):
    id: str
    name: str
    template: str
    template_version: str
    status: AgentStatus
    replicas: int
    config: dict[str, Any]
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    version: int
    status_reason: str | None = None
    pool: str | None = None
    config_changed_at: datetime | None = None
    """Replicas started before this run an old config and are replaced."""


class Agents(msgspec.Struct):
    by_id: dict[str, AgentRecord] = {}
    ids_by_name: dict[str, str] = {}


class AgentsProjection(StructProjection[Agents]):
    name = "agents"
    version = 1
    model_type = Agents

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, AgentCreated):
            self.model.by_id[data.agent_id] = AgentRecord(
                id=data.agent_id,
                name=data.name,
                template=data.template,
                template_version=data.template_version,
                status="created",
                replicas=data.replicas,
                config=data.config,
                labels=data.labels,
                created_at=event.occurred_at,
                updated_at=event.occurred_at,
                version=event.version,
                pool=data.pool,
            )
            self.model.ids_by_name[data.name] = data.agent_id
            return
        if not event.stream_id.startswith("agent-"):
            return
        record = self.model.by_id.get(event.stream_id.removeprefix("agent-"))
        if record is None:
            return
        record.updated_at = event.occurred_at
        record.version = event.version
        if isinstance(data, AgentUpdated):
            if data.config is not None:
                record.config = data.config
                record.config_changed_at = event.occurred_at
            if data.labels is not None:
                record.labels = data.labels
            if data.pool is not None:
                record.pool = data.pool or None
        elif isinstance(data, AgentDeployRequested | AgentScaled):
            record.replicas = data.replicas
        elif isinstance(data, AgentStatusChanged):
            record.status = data.status
            record.status_reason = data.reason
        elif isinstance(data, AgentPurged):
            del self.model.by_id[record.id]
            if self.model.ids_by_name.get(record.name) == record.id:
                del self.model.ids_by_name[record.name]

    def find(self, ref: str) -> AgentRecord:
        """By id or by name."""
        record = self.model.by_id.get(ref)
        if record is None and ref in self.model.ids_by_name:
            record = self.model.by_id.get(self.model.ids_by_name[ref])
        if record is None:
            raise NotFound(f"no agent {ref!r}")
        return record

    def all(self) -> list[AgentRecord]:
        return list(self.model.by_id.values())


class PoolRecord(msgspec.Struct):
    name: str
    description: str
    labels: dict[str, str]
    created_at: datetime


class Pools(msgspec.Struct):
    by_name: dict[str, PoolRecord] = {}


class PoolsProjection(StructProjection[Pools]):
    name = "pools"
    version = 1
    model_type = Pools

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, PoolCreated):
            self.model.by_name[data.name] = PoolRecord(
                name=data.name,
                description=data.description,
                labels=data.labels,
                created_at=event.occurred_at,
            )
        elif isinstance(data, PoolDeleted):
            self.model.by_name.pop(data.name, None)

    def get(self, name: str) -> PoolRecord:
        record = self.model.by_name.get(name)
        if record is None:
            raise NotFound(f"no pool {name!r}")
        return record
