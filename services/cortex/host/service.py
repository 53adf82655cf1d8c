"""The agent host process: replicas, their inbox, heartbeats, and the control endpoints."""

from __future__ import annotations

import asyncio
import os
import re
import socket

import msgspec

from cortex.contracts.hosts import (
    ReplicaFailure,
    ReplicaSpec,
    StartReplicas,
    StartResult,
    StopReplicas,
    StopResult,
)
from cortex.contracts.registry import ReplicaReport
from cortex.kernel.errors import CortexError
from cortex.kernel.ids import new_id
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import AgentLabel
from cortex.kernel.secrets import Sealer
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings

from .context import HostAgentContext
from .dedicated import DedicatedReplicaError, load_replica, say_why
from .dispatch import Dispatcher
from .handled import HandledIds
from .heartbeat import HeartbeatSender
from .loader import HandlerError, extend_path, load_agent_class
from .metrics import HostGauges, ReplicaMetrics
from .replica import Replica, ReplicaStartError
from .start_journal import StartJournal

log = get_logger()

START_BATCH = 64
"""Replicas started at once within one start request."""


def default_host_id() -> str:
    raw = f"{socket.gethostname()}-{os.getpid()}".lower()
    label = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")[:63].strip("-")
    return label or f"host-{os.getpid()}"


class AgentHost:
    def __init__(self, runtime: ServiceRuntime, host_id: str) -> None:
        self.runtime = runtime
        self.host_id = host_id
        self.boot_id = new_id()
        self.replicas: dict[str, Replica] = {}
        self._stops: set[asyncio.Task[None]] = set()
        self._dispatcher: Dispatcher | None = None
        self._heartbeat: HeartbeatSender | None = None
        self._context: HostAgentContext | None = None
        self._handled: HandledIds | None = None
        self._agent_label = AgentLabel(runtime.settings.metrics_per_agent)
        self._sealer = Sealer(runtime.settings.secrets_key)
        self.journal = StartJournal(
            runtime.settings.data_path / "hosts" / host_id / "starting.json"
        )
        self._starting = asyncio.Lock()
        self._gauges: HostGauges | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None
        return self._dispatcher

    @property
    def heartbeat(self) -> HeartbeatSender:
        assert self._heartbeat is not None
        return self._heartbeat

    async def start(self, runtime: ServiceRuntime) -> None:
        settings = runtime.settings
        self._context = HostAgentContext(runtime.nc, runtime.subjects, runtime.client())
        await self._context.watch_purges()
        handled = self._handled = HandledIds(
            await runtime.js.key_value(runtime.subjects.dedupe_bucket),
            journal=settings.data_path / "hosts" / self.host_id / "handled.log",
        )
        runtime.on_reconnect(handled.reassert)
        self._dispatcher = Dispatcher(
            runtime.nc,
            runtime.js,
            runtime.subjects,
            self.host_id,
            handled,
            ack_wait=settings.ack_wait,
        )
        await self._dispatcher.start()
        self._heartbeat = HeartbeatSender(
            runtime.nc,
            runtime.subjects,
            host_id=self.host_id,
            boot_id=self.boot_id,
            interval=settings.heartbeat_interval,
            capacity=settings.host_capacity,
            replicas=self.reports,
        )
        self._heartbeat.start()
        self._gauges = HostGauges(
            self.host_id, lambda: [(r.state, r.inflight) for r in self.replicas.values()]
        )
        log.info("agent host started", host_id=self.host_id, boot_id=self.boot_id)
        if settings.host_replica:
            await self._start_dedicated(settings)

    async def _start_dedicated(self, settings: Settings) -> None:
        try:
            spec = load_replica(settings, self.host_id)
        except DedicatedReplicaError as exc:
            say_why(str(exc))
            raise
        result = await self.start_specs([spec])
        if result.failed:
            why = result.failed[0].error
            say_why(why)
            raise DedicatedReplicaError(f"replica {spec.instance_id} did not start: {why}")

    def reports(self) -> list[ReplicaReport]:
        return [r.report() for r in self.replicas.values()]

    # --- control endpoints -----------------------------------------------------------------

    async def start_replicas(self, req: StartReplicas, ctx: Context) -> StartResult:
        return await self.start_specs(req.replicas)

    async def start_specs(self, specs: list[ReplicaSpec]) -> StartResult:
        started: list[str] = []
        failed: list[ReplicaFailure] = []
        capacity = self.runtime.settings.host_capacity
        wanted: list[ReplicaSpec] = []
        for spec in specs:
            if spec.instance_id in self.replicas:
                started.append(spec.instance_id)
                continue
            if capacity and len(self.replicas) + len(wanted) >= capacity:
                failed.append(
                    ReplicaFailure(
                        instance_id=spec.instance_id,
                        agent_id=spec.agent_id,
                        error=f"host {self.host_id} is full ({capacity})",
                    )
                )
                continue
            if self.journal.killed_by(spec):
                failed.append(
                    ReplicaFailure(
                        instance_id=spec.instance_id,
                        agent_id=spec.agent_id,
                        error=f"starting this agent ended agent host {self.host_id} twice "
                        "(the process exited while the agent was imported, made or started); "
                        "not tried here again until its template version or config changes",
                    )
                )
                continue
            wanted.append(spec)
        async with self._starting:
            # After a death while starting, each replica then started is tried alone first,
            # so that a second death names the one to blame.
            for spec in [s for s in wanted if self.journal.suspect(s)]:
                with self.journal.starting([spec], solo=True):
                    await self._start([spec], started, failed)
            others = [s for s in wanted if not self.journal.suspect(s)]
            with self.journal.starting(others):
                await self._start(others, started, failed)
        self.heartbeat.wake()
        return StartResult(started=started, failed=failed)

    async def _start(
        self, specs: list[ReplicaSpec], started: list[str], failed: list[ReplicaFailure]
    ) -> None:
        assert self._context is not None
        settings = self.runtime.settings
        pending: list[Replica] = []
        for spec in specs:
            try:
                cls = load_agent_class(spec.handler, settings.agent_path, settings.agent_modules)
                # Secret config values travel sealed; the agent gets them open.
                opened = msgspec.structs.replace(spec, config=self._sealer.open_config(spec.config))
                replica = Replica(
                    opened, cls, self._context, ReplicaMetrics(spec, self._agent_label)
                )
            except (HandlerError, CortexError) as exc:
                failed.append(
                    ReplicaFailure(
                        instance_id=spec.instance_id,
                        agent_id=spec.agent_id,
                        error=exc.message if isinstance(exc, CortexError) else str(exc),
                    )
                )
                continue
            self.replicas[spec.instance_id] = replica
            pending.append(replica)

        async def start_one(replica: Replica) -> None:
            try:
                await replica.start()
            except ReplicaStartError as exc:
                self.replicas.pop(replica.id, None)
                self.heartbeat.stopped(replica.id)
                failed.append(
                    ReplicaFailure(
                        instance_id=replica.id, agent_id=replica.spec.agent_id, error=str(exc)
                    )
                )
                return
            await self.dispatcher.add(replica)
            started.append(replica.id)

        for i in range(0, len(pending), START_BATCH):
            await asyncio.gather(*(start_one(r) for r in pending[i : i + START_BATCH]))

    async def stop_replicas(self, req: StopReplicas, ctx: Context) -> StopResult:
        stopping, unknown = [], []
        for instance_id in req.instance_ids:
            replica = self.replicas.get(instance_id)
            if replica is None:
                unknown.append(instance_id)
                continue
            stopping.append(instance_id)
            task = asyncio.create_task(self._stop(replica, req.grace))
            self._stops.add(task)
            task.add_done_callback(self._stops.discard)
        self.heartbeat.wake()
        return StopResult(stopping=stopping, unknown=unknown)

    async def _stop(self, replica: Replica, grace: float) -> None:
        stopping = replica.stop(grace)
        self.heartbeat.wake()  # report `stopping` now
        await stopping
        await self.dispatcher.remove(replica)
        self.replicas.pop(replica.id, None)
        self.heartbeat.stopped(replica.id)
        self.heartbeat.wake()

    # --- SIGTERM -------------------------------------------------------------------------------

    async def drain(self, runtime: ServiceRuntime) -> None:
        """Stop taking messages, stop every replica gracefully, tell the registry."""
        grace = runtime.settings.shutdown_grace
        log.info("draining", replicas=len(self.replicas))
        if self._dispatcher:
            await self._dispatcher.stop_taking(grace)
        await asyncio.gather(*(self._stop(r, grace) for r in list(self.replicas.values())))
        if self._stops:
            await asyncio.wait(self._stops, timeout=grace)
        if self._handled:
            await self._handled.close()
        if self._heartbeat:
            await self._heartbeat.stop()
            try:
                await self._heartbeat.beat()
            except Exception as exc:
                log.warning("last heartbeat not sent", error=str(exc))
        if self._gauges:
            self._gauges.close()


def build(settings: Settings) -> ServiceRuntime:
    host_id = settings.host_name or default_host_id()
    extend_path(settings.agent_path)
    runtime = ServiceRuntime(
        "host",
        settings,
        stateful=False,
        metadata={"host_id": host_id},
        description=f"CodeValdCortex agent host {host_id}",
    )
    host = AgentHost(runtime, host_id)
    runtime.on_start(host.start)
    runtime.on_stop(host.drain)
    if settings.host_replica:
        # Ready once its one replica runs: the pod's readiness probe.
        runtime.ready_when(
            "replica", lambda: getattr(host.replicas.get(host_id), "state", "") == "running"
        )
    runtime.endpoint(f"{host_id}.start", StartReplicas)(host.start_replicas)
    runtime.endpoint(f"{host_id}.stop", StopReplicas)(host.stop_replicas)
    return runtime
