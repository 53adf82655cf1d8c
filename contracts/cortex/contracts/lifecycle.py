"""The lifecycle service: templates and agents, their commands, views and events.

Commands and queries are NATS requests to `cortex.lifecycle.<verb>` (the verb is in each
request Struct's docstring); events are published on `cortex.evt.lifecycle.<type>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from cortex.contracts.names import (
    DnsLabel,
    Handler,
    Labels,
    PageSize,
    Positive,
    Replicas,
    Seconds,
    Version,
)
from cortex.contracts.registry import InstanceView

AgentStatus = Literal[
    "created", "deploying", "running", "scaling", "terminating", "terminated", "failed"
]
Runtime = Literal["host", "kubernetes"]


# --- templates ---------------------------------------------------------------------------


class ResourceList(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    cpu: str | None = None
    """Kubernetes quantity, e.g. `250m` or `1`."""
    memory: str | None = None
    """Kubernetes quantity, e.g. `256Mi`."""


class Resources(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    requests: ResourceList = ResourceList()
    limits: ResourceList = ResourceList()


class HealthSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    startup_timeout: Seconds = 30.0
    """How long `on_start` may take before the replica counts as failed."""
    stop_grace: Seconds = 30.0
    """Default time a terminating replica gets to finish in-flight messages and `on_stop`."""


class TemplateSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`template.register`: what agents of this template run. Immutable once registered."""

    name: DnsLabel
    version: Version = "1"
    description: str = ""
    runtime: Runtime = "host"
    handler: Handler | None = None
    """The agent class, `package.module:Class`: for runtime `kubernetes`, one in `image`."""
    image: str | None = None
    """For runtime `kubernetes`: the container image, the platform's image with the agent's
    code added (docs/kubernetes.md); its pods run it as an agent host."""
    config_schema: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})
    """JSON Schema that every agent's config must satisfy."""
    default_config: dict[str, Any] = {}
    resources: Resources = Resources()
    default_replicas: Replicas = 1
    topics: list[str] = []
    health: HealthSettings = HealthSettings()
    max_deliveries: Positive = 5
    """Deliveries of one message before it is dead-lettered."""
    concurrency: Positive = 1
    """Messages one replica handles at the same time."""
    labels: Labels = {}


class TemplateView(TemplateSpec, frozen=True, kw_only=True):
    registered_at: datetime
    registered_by: str | None = None


class TemplateRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """`template.register`'s reply: the version, and whether this request registered it."""

    template: TemplateView
    created: bool
    """False when the same definition was registered already: nothing changed."""


class TemplateSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    latest: str
    versions: list[str]
    description: str
    runtime: Runtime


class TemplateVersions(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    versions: list[TemplateView]
    """Oldest first; the last one is what `name` without `@version` means."""


class GetTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`template.get`: every version of one template."""

    name: str


class ListTemplates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`template.list`."""


# --- agents ------------------------------------------------------------------------------


class AgentView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    template: str
    template_version: str
    status: AgentStatus
    status_reason: str | None = None
    replicas: int
    """Desired replicas."""
    ready_replicas: int = 0
    """Replicas running and healthy, as last observed."""
    config: dict[str, Any]
    labels: dict[str, str] = {}
    pool: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    """The agent's event stream version: changes with every change to the agent."""
    instances: list[InstanceView] = []
    """Filled in by the gateway's `GET /agents/{id}` from the registry."""
    objects: list[dict[str, Any]] = []
    """Dry runs of an agent whose template runs on `kubernetes`: the objects the `kubernetes`
    driver would apply for it and its first replica, secret values shown as `***`."""


class CreateAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.create`."""

    name: DnsLabel
    template: str
    """`name` (latest version) or `name@version`."""
    config: dict[str, Any] = {}
    """Merged over the template's `default_config`, then validated against its schema."""
    replicas: Replicas | None = None
    """Defaults to the template's `default_replicas`."""
    labels: Labels = {}
    pool: DnsLabel | None = None
    """A pool that exists (see `pool.create`)."""
    deploy: bool = False
    """Deploy right after creating."""
    dry_run: bool = False


class AgentRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`agent.get`: an agent by id or by name."""

    ref: str


class ListAgents(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.list`, ordered by name; `after` is the `next` of the previous page."""

    status: AgentStatus | None = None
    template: str | None = None
    pool: str | None = None
    labels: Labels = {}
    name: str | None = None
    """Agents whose name contains this text, in any case."""
    limit: PageSize = 100
    after: str | None = None


class AgentPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AgentView]
    total: int
    """Agents matching the filters, over all pages."""
    next: str | None = None


class UpdateAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.update`: replace the config, the labels and/or the pool (`""` leaves the pool)."""

    ref: str
    config: dict[str, Any] | None = None
    labels: Labels | None = None
    pool: str | None = None
    dry_run: bool = False


class DeployAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.deploy`: start the replicas of a created, terminated or failed agent."""

    ref: str
    replicas: Replicas | None = None


class ScaleAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.scale`."""

    ref: str
    replicas: Replicas
    dry_run: bool = False


class ScalePlan(msgspec.Struct, frozen=True, kw_only=True):
    agent: AgentView
    add: int
    """Replicas that will be started."""
    remove: int
    """Replicas that will be stopped."""
    dry_run: bool


class DeleteAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`agent.delete`: terminate gracefully; `purge` also removes the agent and frees its name."""

    ref: str
    grace: Seconds | None = None
    """Seconds each replica gets to finish; the template's `stop_grace` by default."""
    purge: bool = False


# --- events ------------------------------------------------------------------------------


class TemplateRegistered(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "template.registered"
    spec: TemplateSpec


class AgentNameClaimed(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.name_claimed"
    name: str
    agent_id: str
    claimed_at: datetime | None = None
    """When; a claim whose agent was never created is taken for one in flight until a while
    after this (None, in claims from before it was recorded: long ago)."""


class AgentNameReleased(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.name_released"
    name: str
    agent_id: str


class AgentCreated(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.created"
    agent_id: str
    name: str
    template: str
    template_version: str
    config: dict[str, Any]
    replicas: int
    labels: dict[str, str] = {}
    pool: str | None = None
    topics: list[str] = []
    """The template's topics: the messaging service subscribes the agent to them."""


class AgentUpdated(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.updated"
    config: dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    pool: str | None = None
    """`""`: left its pool; None: unchanged."""


class AgentDeployRequested(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.deploy_requested"
    replicas: int


class AgentScaled(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.scaled"
    replicas: int
    previous: int


class AgentStatusChanged(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.status_changed"
    status: AgentStatus
    previous: AgentStatus
    reason: str | None = None


class AgentTerminateRequested(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.terminate_requested"
    grace: float
    purge: bool = False


class AgentTerminated(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.terminated"


class AgentPurged(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "agent.purged"
