"""The lifecycle service: endpoints over the template and agent aggregates, the reconciler."""

from __future__ import annotations

import bisect
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cortex.contracts.lifecycle import (
    AgentCreated,
    AgentNameClaimed,
    AgentNameReleased,
    AgentPage,
    AgentRef,
    AgentView,
    CreateAgent,
    DeleteAgent,
    DeployAgent,
    GetTemplate,
    ListAgents,
    ListTemplates,
    ScaleAgent,
    ScalePlan,
    TemplateRegistration,
    TemplateSpec,
    TemplateSummary,
    TemplateVersions,
    TemplateView,
    UpdateAgent,
)
from cortex.contracts.pools import ListPools, PoolRef, PoolSpec, PoolView
from cortex.kernel.aggregate import Repository
from cortex.kernel.errors import Conflict, NotFound
from cortex.kernel.ids import new_id, utcnow
from cortex.kernel.leases import Singleton
from cortex.kernel.logging import get_logger
from cortex.kernel.secrets import Sealer, mask, sealed_values, secret_paths
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings

from . import domain
from .builtin import BUILTIN_TEMPLATES
from .domain import AgentState, NameState, PoolState, TemplateState
from .drivers import kubernetes_objects
from .drivers.host import HostDriver, new_instance_id
from .drivers.kubernetes import KubernetesDriver
from .drivers.kubernetes_objects import pod_settings
from .drivers.port import RuntimeDriver
from .projections import (
    AgentRecord,
    AgentsProjection,
    PoolRecord,
    PoolsProjection,
    TemplatesProjection,
)
from .reconciler import Reconciler
from .validation import check_config, check_template

log = get_logger()


class Lifecycle:
    def __init__(
        self,
        runtime: ServiceRuntime,
        templates: TemplatesProjection,
        agents: AgentsProjection,
        pools: PoolsProjection,
    ) -> None:
        self.runtime = runtime
        self.templates = templates
        self.agents = agents
        self.pools = pools
        codec = domain.CODEC
        self.template_repo = Repository[TemplateState](
            runtime,
            codec,
            stream_type="template",
            initial=TemplateState,
            evolve=domain.evolve_template,
        )
        self.name_repo = Repository[NameState](
            runtime, codec, stream_type="agentname", initial=NameState, evolve=domain.evolve_name
        )
        self.pool_repo = Repository[PoolState](
            runtime, codec, stream_type="pool", initial=PoolState, evolve=domain.evolve_pool
        )
        self.agent_repo = Repository[AgentState](
            runtime, codec, stream_type="agent", initial=AgentState, evolve=domain.evolve_agent
        )
        self.sealer = Sealer(runtime.settings.secrets_key)
        self.reconciler: Reconciler | None = None
        self.acting: Singleton
        """The lease under which this replica's reconciler acts rather than only observes."""
        self._registry_events: list[Subscription] = []
        self.pods: KubernetesDriver | None = None

    # --- views -----------------------------------------------------------------------------

    def view(self, record: AgentRecord) -> AgentView:
        ready = self.reconciler.ready.get(record.id, 0) if self.reconciler else 0
        note = self.reconciler.crash_note(record.id) if self.reconciler else None
        return AgentView(
            id=record.id,
            name=record.name,
            template=record.template,
            template_version=record.template_version,
            status=record.status,
            status_reason=record.status_reason or note,
            replicas=record.replicas,
            ready_replicas=ready,
            config=mask(record.config),
            labels=record.labels,
            pool=record.pool,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=record.version,
        )

    def preview(self, record: AgentRecord, state: AgentState) -> AgentView:
        """What `record` would look like with `state` (for dry runs)."""
        return msgspec.structs.replace(
            self.view(record),
            status=state.status,
            status_reason=state.status_reason,
            replicas=state.replicas,
            config=mask(state.config),
            labels=state.labels,
            pool=state.pool,
        )

    # --- templates -----------------------------------------------------------------------

    async def register_template(
        self, spec: TemplateSpec, ctx: Context | None
    ) -> TemplateRegistration:
        settings = self.runtime.settings
        check_template(spec, settings.agent_path, settings.agent_modules)
        outcome = await self.template_repo.execute(
            domain.template_stream(spec.name),
            lambda state: domain.register_template(state, spec),
            ctx,
        )
        view = self.templates.get(f"{spec.name}@{spec.version}")
        return TemplateRegistration(template=view, created=bool(outcome.events))

    async def list_templates(self, req: ListTemplates, ctx: Context) -> list[TemplateSummary]:
        return [
            TemplateSummary(
                name=name,
                latest=views[-1].version,
                versions=[v.version for v in views],
                description=views[-1].description,
                runtime=views[-1].runtime,
            )
            for name, views in sorted(self.templates.model.by_name.items())
        ]

    async def get_template(self, req: GetTemplate, ctx: Context) -> TemplateVersions:
        return TemplateVersions(name=req.name, versions=self.templates.versions(req.name))

    # --- agents ----------------------------------------------------------------------------

    async def create_agent(self, cmd: CreateAgent, ctx: Context) -> AgentView:
        try:
            template = self.templates.get(cmd.template)
        except NotFound as exc:
            raise NotFound(exc.message, details={"field": "$.template"}) from None
        secret = list(secret_paths(template.config_schema))
        config = self.sealer.reveal({**template.default_config, **cmd.config}, None, secret)
        check_config(template.config_schema, config)
        config = self.sealer.seal_config(config, None, secret)
        if cmd.pool is not None:
            self._pool_exists(cmd.pool, "$.pool")
        replicas = template.default_replicas if cmd.replicas is None else cmd.replicas
        agent_id = new_id()
        created = AgentCreated(
            agent_id=agent_id,
            name=cmd.name,
            template=template.name,
            template_version=template.version,
            config=config,
            replicas=replicas,
            labels=dict(cmd.labels),
            pool=cmd.pool,
            topics=list(template.topics),
        )
        events = domain.create_agent(created, cmd.deploy)
        # Before the name is claimed: a refused create must leave nothing behind.
        self.agent_repo.check_size(domain.agent_stream(agent_id), events, ctx)
        holder = self.agents.model.ids_by_name.get(cmd.name)
        domain.claim_name(
            domain.NameState(holder=holder),
            cmd.name,
            agent_id,
            holder_exists=holder is not None,
            now=utcnow(),
        )
        if cmd.dry_run:
            state = AgentState()
            for event in events:
                state = domain.evolve_agent(state, event)
            now = utcnow()
            record = AgentRecord(
                id=agent_id,
                name=cmd.name,
                template=template.name,
                template_version=template.version,
                status=state.status,
                replicas=replicas,
                config=config,
                labels=dict(cmd.labels),
                created_at=now,
                updated_at=now,
                version=0,
                pool=cmd.pool,
            )
            view = self.preview(record, state)
            if template.runtime == "kubernetes":
                view = msgspec.structs.replace(view, objects=self._pod_objects(record, template))
            return view

        async def claim(state: NameState) -> list[AgentNameClaimed]:
            # Decided on the streams themselves: this replica's read model may not have the
            # holder's `agent.created` yet (another replica's, or one a moment old).
            holder = await self._stored_agent(state.holder)
            now = utcnow()
            held = domain.holds_name(state, holder, now)
            return domain.claim_name(state, cmd.name, agent_id, holder_exists=held, now=now)

        await self.name_repo.execute(domain.name_stream(cmd.name), claim, ctx)
        await self.agent_repo.execute(domain.agent_stream(agent_id), lambda _: events, ctx)
        ctx.log.info(
            "agent created",
            agent_id=agent_id,
            agent_name=cmd.name,
            template=f"{template.name}:{template.version}",
            deploy=cmd.deploy,
        )
        self.kick_reconciler()
        return self.view(self.agents.find(agent_id))

    def _pod_objects(self, record: AgentRecord, template: TemplateView) -> list[dict[str, Any]]:
        return kubernetes_objects.preview(
            record,
            template,
            record.config,
            [path for path, _ in sealed_values(record.config)],
            pod_settings(self.runtime.settings),
            new_instance_id(record.name),
        )

    async def _stored_agent(self, agent_id: str | None) -> AgentState:
        if agent_id is None:
            return AgentState()
        state, _ = await self.agent_repo.load(domain.agent_stream(agent_id))
        return state

    async def list_agents(self, req: ListAgents, ctx: Context) -> AgentPage:
        text = req.name.casefold() if req.name else None
        matching = sorted(
            (
                a
                for a in self.agents.all()
                if (req.status is None or a.status == req.status)
                and (req.template is None or a.template == req.template)
                and (req.pool is None or a.pool == req.pool)
                and all(a.labels.get(k) == v for k, v in req.labels.items())
                and (text is None or text in a.name.casefold())
            ),
            key=lambda a: a.name,
        )
        start = bisect.bisect_right([a.name for a in matching], req.after) if req.after else 0
        page = matching[start : start + req.limit]
        more = start + req.limit < len(matching)
        return AgentPage(
            items=[self.view(a) for a in page],
            total=len(matching),
            next=page[-1].name if more and page else None,
        )

    async def get_agent(self, req: AgentRef, ctx: Context) -> AgentView:
        return self.view(self.agents.find(req.ref))

    async def update_agent(self, cmd: UpdateAgent, ctx: Context) -> AgentView:
        record = self.agents.find(cmd.ref)
        template = self.templates.get(f"{record.template}@{record.template_version}")
        secret = list(secret_paths(template.config_schema))
        if cmd.pool:
            self._pool_exists(cmd.pool, "$.pool")

        def decide(state: AgentState) -> list[Any]:
            domain.must_exist(state, cmd.ref)
            config = None
            if cmd.config is not None:
                # `***` stands for the secret the stream holds now, not what this replica's
                # read model last saw.
                config = self.sealer.reveal(cmd.config, state.config, secret)
                check_config(template.config_schema, config)
                config = self.sealer.seal_config(config, state.config, secret)
            return domain.update_agent(state, config, cmd.labels, cmd.pool)

        outcome = await self.agent_repo.execute(
            domain.agent_stream(record.id), decide, ctx, dry_run=cmd.dry_run
        )
        if cmd.dry_run:
            return self.preview(record, outcome.state)
        return self.view(self.agents.find(record.id))

    async def deploy_agent(self, cmd: DeployAgent, ctx: Context) -> AgentView:
        record = self.agents.find(cmd.ref)
        await self.agent_repo.execute(
            domain.agent_stream(record.id),
            lambda s: self._alive(s, cmd.ref) or domain.deploy_agent(s, cmd.replicas),
            ctx,
        )
        self.kick_reconciler()
        return self.view(self.agents.find(record.id))

    async def scale_agent(self, cmd: ScaleAgent, ctx: Context) -> ScalePlan:
        record = self.agents.find(cmd.ref)
        before = record.replicas
        outcome = await self.agent_repo.execute(
            domain.agent_stream(record.id),
            lambda s: self._alive(s, cmd.ref) or domain.scale_agent(s, cmd.replicas),
            ctx,
            dry_run=cmd.dry_run,
        )
        running = record.status in domain.ACTIVE
        diff = cmd.replicas - before if running else 0
        if not cmd.dry_run:
            self.kick_reconciler()
            view = self.view(self.agents.find(record.id))
        else:
            view = self.preview(record, outcome.state)
        return ScalePlan(agent=view, add=max(0, diff), remove=max(0, -diff), dry_run=cmd.dry_run)

    async def delete_agent(self, cmd: DeleteAgent, ctx: Context) -> AgentView:
        record = self.agents.find(cmd.ref)
        template = self.templates.get(f"{record.template}@{record.template_version}")
        grace = template.health.stop_grace if cmd.grace is None else cmd.grace
        view = self.view(record)
        outcome = await self.agent_repo.execute(
            domain.agent_stream(record.id),
            lambda s: self._alive(s, cmd.ref) or domain.terminate_agent(s, grace, cmd.purge),
            ctx,
        )
        if outcome.state.purged:
            await self.release_name(outcome.state)
            return msgspec.structs.replace(view, status="terminated")
        self.kick_reconciler()
        return self.view(self.agents.find(record.id))

    async def release_name(self, state: AgentState) -> None:
        """After a purge the name is free again (claims of purged agents count as free anyway;
        the event makes it explicit in the name's history)."""
        await self.name_repo.execute(
            domain.name_stream(state.name),
            lambda s: (
                [AgentNameReleased(name=state.name, agent_id=state.id)]
                if s.holder == state.id
                else []
            ),
            None,
        )

    def _pool_exists(self, name: str, field: str) -> None:
        try:
            self.pools.get(name)
        except NotFound as exc:
            raise NotFound(exc.message, details={"field": field}) from None

    # --- pools -------------------------------------------------------------------------------

    def pool_view(self, record: PoolRecord) -> PoolView:
        members = sum(1 for a in self.agents.all() if a.pool == record.name)
        return PoolView(
            name=record.name,
            description=record.description,
            labels=record.labels,
            agents=members,
            created_at=record.created_at,
        )

    async def create_pool(self, spec: PoolSpec, ctx: Context) -> PoolView:
        await self.pool_repo.execute(
            domain.pool_stream(spec.name), lambda s: domain.create_pool(s, spec), ctx
        )
        return self.pool_view(self.pools.get(spec.name))

    async def list_pools(self, req: ListPools, ctx: Context) -> list[PoolView]:
        return [self.pool_view(p) for _, p in sorted(self.pools.model.by_name.items())]

    async def get_pool(self, req: PoolRef, ctx: Context) -> PoolView:
        return self.pool_view(self.pools.get(req.name))

    async def delete_pool(self, req: PoolRef, ctx: Context) -> PoolView:
        view = self.pool_view(self.pools.get(req.name))
        await self.pool_repo.execute(
            domain.pool_stream(req.name),
            lambda s: domain.delete_pool(s, req.name, view.agents),
            ctx,
        )
        return view

    @staticmethod
    def _alive(state: AgentState, ref: str) -> list[Any]:
        domain.must_exist(state, ref)
        return []

    def kick_reconciler(self) -> None:
        if self.reconciler:
            self.reconciler.kick()

    # --- lifecycle of the service ------------------------------------------------------------

    async def on_start(self, runtime: ServiceRuntime) -> None:
        for spec in BUILTIN_TEMPLATES:
            try:
                await self.register_template(spec, None)
            except Conflict as exc:
                # A built-in version is immutable too; a changed one ships as a new version,
                # so this only happens to a hand-edited install. Keep running.
                log.warning("built-in template not registered", error=exc.message)
        settings = runtime.settings
        drivers: dict[str, RuntimeDriver] = {"host": HostDriver(runtime.client())}
        if settings.kubernetes_namespace:
            self.pods = KubernetesDriver(
                pod_settings(settings),
                self.sealer,
                settings.kubernetes_config,
                on_change=self.kick_reconciler,
            )
            await self.pods.open()
            drivers["kubernetes"] = self.pods
        self.reconciler = Reconciler(
            agents=self.agents,
            templates=self.templates,
            repository=self.agent_repo,
            drivers=drivers,
            interval=settings.reconcile_interval,
            settle_margin=settings.heartbeat_interval * (settings.unhealthy_after + 2),
            start_failures=settings.start_failures,
            on_purged=self.release_name,
            acting=lambda: self.acting.held,
            catch_up=runtime.catch_up,
        )
        self.reconciler.start()

        async def on_registry_event(msg: Msg) -> None:
            self.kick_reconciler()

        # Registry events about hosts and instances (a replica registered, went unhealthy,
        # ...) are when things change; the reconciler's timer is only the safety net. State
        # writes are registry events too, and must not wake it.
        self._registry_events = [
            await runtime.nc.subscribe(
                runtime.subjects.event("registry", kind), cb=on_registry_event
            )
            for kind in ("host.>", "instance.>")
        ]
        # And another replica's commands: the one that acts may not be the one that was asked.
        self._registry_events.append(
            await runtime.nc.subscribe(runtime.subjects.appended("lifecycle"), cb=on_registry_event)
        )

    async def on_stop(self, runtime: ServiceRuntime) -> None:
        for sub in self._registry_events:
            await sub.unsubscribe()
        if self.reconciler:
            await self.reconciler.stop()
        if self.pods:
            await self.pods.close()


def build(settings: Settings) -> ServiceRuntime:
    templates, agents, pools = TemplatesProjection(), AgentsProjection(), PoolsProjection()
    runtime = ServiceRuntime("lifecycle", settings, projections=[templates, agents, pools])
    lifecycle = Lifecycle(runtime, templates, agents, pools)

    async def act() -> None:
        lifecycle.kick_reconciler()

    async def observe_only() -> None:
        return None

    lifecycle.acting = runtime.singleton("reconciler", begin=act, end=observe_only)
    runtime.on_start(lifecycle.on_start)
    runtime.on_stop(lifecycle.on_stop)
    runtime.endpoint("template.register", TemplateSpec)(lifecycle.register_template)
    runtime.endpoint("template.list", ListTemplates)(lifecycle.list_templates)
    runtime.endpoint("template.get", GetTemplate)(lifecycle.get_template)
    runtime.endpoint("agent.create", CreateAgent)(lifecycle.create_agent)
    runtime.endpoint("agent.list", ListAgents)(lifecycle.list_agents)
    runtime.endpoint("agent.get", AgentRef)(lifecycle.get_agent)
    runtime.endpoint("agent.update", UpdateAgent)(lifecycle.update_agent)
    runtime.endpoint("agent.deploy", DeployAgent)(lifecycle.deploy_agent)
    runtime.endpoint("agent.scale", ScaleAgent)(lifecycle.scale_agent)
    runtime.endpoint("agent.delete", DeleteAgent)(lifecycle.delete_agent)
    runtime.endpoint("pool.create", PoolSpec)(lifecycle.create_pool)
    runtime.endpoint("pool.list", ListPools)(lifecycle.list_pools)
    runtime.endpoint("pool.get", PoolRef)(lifecycle.get_pool)
    runtime.endpoint("pool.delete", PoolRef)(lifecycle.delete_pool)
    return runtime
