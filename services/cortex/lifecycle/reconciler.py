"""The reconciler: makes the replicas that run match what each agent wants, and moves agent
statuses along (deploying -> running, terminating -> terminated, -> failed).

It runs every `reconcile_interval` and whenever something changes (a command, a registry
event), one pass at a time. Starts it asked for but has not seen registered yet are remembered
(`pending`) until they show up or time out, so a slow host is not sent the same replica twice.

Every lifecycle replica observes (the ready counts its views show come from that); only the one
holding the lease `lifecycle.reconciler` acts: starts, stops and status changes. A replica that
takes the lease over does not know what its predecessor had just asked to start, so a replica
started in the last instants before a hand-over may be started twice, and the extra one is then
stopped like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from cortex.kernel.aggregate import Repository
from cortex.kernel.errors import CortexError
from cortex.kernel.logging import get_logger
from cortex.kernel.waiting import cancel_and_wait, wait_event

from .domain import ACTIVE, AgentState, agent_stream, observed
from .drivers.port import ObservedInstance, RuntimeDriver, StartRequest
from .metrics import PASS_SECONDS, RESTARTS, START_FAILURES, STARTS, Tallies
from .planning import plan_agent
from .projections import AgentsProjection, TemplatesProjection

log = get_logger()


@dataclass(slots=True)
class _CrashLoop:
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""


MAX_BACKOFF = 60.0


@dataclass(slots=True)
class _Pending:
    agent_id: str
    host_id: str
    deadline: float
    config_at: datetime | None


class Reconciler:
    def __init__(
        self,
        *,
        agents: AgentsProjection,
        templates: TemplatesProjection,
        repository: Repository[AgentState],
        drivers: dict[str, RuntimeDriver],
        interval: float,
        settle_margin: float,
        on_purged: Callable[[AgentState], Awaitable[None]] | None = None,
        start_failures: int = 5,
        acting: Callable[[], bool] = lambda: True,
        catch_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`acting`: whether this replica acts (holds the lease) or only observes; `catch_up`
        brings the read models level with the store before a pass."""
        self._agents = agents
        self._templates = templates
        self._repo = repository
        self._drivers = drivers
        self._interval = interval
        self._margin = settle_margin
        self._on_purged = on_purged
        self._pending: dict[str, _Pending] = {}
        self._started_with: dict[str, datetime | None] = {}
        self._stopping: dict[str, float] = {}
        self._failures: dict[str, str] = {}
        self._crashes: dict[str, _CrashLoop] = {}
        self._waiting: dict[str, str] = {}
        """Why a start was not made (no room, the runtime's API refusing), by agent id."""
        self._observed: dict[str, str] = {}
        """Why a replica is not running, as the runtime said at the last pass, by agent id."""
        self._start_failures = start_failures
        self._acting = acting
        self._catch_up = catch_up
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._warned = 0.0
        self.ready: dict[str, int] = {}
        """Ready replicas per agent id, as of the last pass (for the API's views)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait(self._task)

    def kick(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await wait_event(self._wake, self._interval)
            self._wake.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except CortexError as exc:
                if time.monotonic() - self._warned > 30:
                    log.warning("reconciliation skipped", error=exc.message)
                    self._warned = time.monotonic()
            except Exception:
                log.exception("reconciliation failed")

    async def reconcile(self) -> None:
        async with self._lock:
            started = time.perf_counter()
            if self._catch_up is not None:
                # Another replica's command may be a few milliseconds ahead of the read model.
                await self._catch_up()
            tallies = Tallies()
            for runtime, driver in self._drivers.items():
                await self._pass(runtime, driver, tallies)
            tallies.report(self._acting(), self._agents.all())
            PASS_SECONDS.observe(time.perf_counter() - started)

    async def _pass(self, runtime: str, driver: RuntimeDriver, tallies: Tallies) -> None:
        act = self._acting()
        observation = await driver.observe()
        now = time.monotonic()
        if act and observation.failures:
            for failure in observation.failures:
                self._crashed(failure.agent_id, failure.error, now)
        seen = {i.id for i in observation.instances}
        # What config each replica was started with, kept while it runs.
        self._started_with = {
            **{k: v for k, v in self._started_with.items() if k in seen},
            **{k: p.config_at for k, p in self._pending.items() if k in seen},
        }
        self._pending = {
            k: p for k, p in self._pending.items() if k not in seen and p.deadline > now
        }
        self._stopping = {k: d for k, d in self._stopping.items() if k in seen and d > now}
        by_agent: dict[str, list[ObservedInstance]] = defaultdict(list)
        for instance in observation.instances:
            if instance.health != "gone":
                by_agent[instance.agent_id].append(instance)
        pending_by_agent = Counter(p.agent_id for p in self._pending.values())
        pending_by_host = Counter(p.host_id for p in self._pending.values())

        starts: list[StartRequest] = []
        replacing: set[str] = set()
        stops: dict[float, list[ObservedInstance]] = defaultdict(list)
        known = set()
        wanted: set[str] = set()
        for agent in self._agents.all():
            known.add(agent.id)
            template = self._templates.get(f"{agent.template}@{agent.template_version}")
            if template.runtime not in self._drivers and agent.status in ACTIVE:
                self._failures[agent.id] = f"no runtime driver for `{template.runtime}` templates"
                await self._settle(agent.id, 0, 0, True)
                continue
            if template.runtime != runtime:
                continue
            if observation.blind is not None:
                self._observed[agent.id] = observation.blind
                continue
            if note := observation.notes.get(agent.id):
                self._observed[agent.id] = note
            else:
                self._observed.pop(agent.id, None)
            plan = plan_agent(
                status=agent.status,
                replicas=agent.replicas,
                instances=by_agent.get(agent.id, []),
                pending=pending_by_agent.get(agent.id, 0),
                stopping=self._stopping.keys(),
                config_changed_at=agent.config_changed_at,
                started_with=self._started_with,
            )
            self.ready[agent.id] = plan.ready
            desired = agent.replicas if agent.status in ACTIVE else 0
            tallies.replicas(agent.template, desired, plan.ready)
            crash = self._crashes.get(agent.id)
            if crash and (agent.status not in ACTIVE or plan.ready == agent.replicas > 0):
                del self._crashes[agent.id]  # stopped, or running again: the loop is over
                crash = None
            if agent.status not in ACTIVE or plan.start == 0:
                self._waiting.pop(agent.id, None)
            if agent.status in ACTIVE or plan.present:
                wanted.add(agent.id)
            given_up = agent.id in self._failures  # turns `failed` below: start nothing more
            if plan.start and not given_up and not (crash and now < crash.retry_at):
                starts.append(
                    StartRequest(
                        agent=agent,
                        template=template,
                        count=plan.start,
                        config=agent.config,
                        config_at=agent.config_changed_at,
                    )
                )
                if agent.status == "running" or crash:
                    replacing.add(agent.id)
            if plan.stop:
                grace = template.health.stop_grace
                if agent.status == "terminating":
                    grace = (await self._repo.load(agent_stream(agent.id)))[0].grace
                stops[grace] += plan.stop
            await self._settle(agent.id, plan.ready, plan.present, plan.settled)
        for notes in (self._waiting, self._observed):
            for agent_id in notes.keys() - known:
                del notes[agent_id]
        # Replicas of agents this service does not know (purged, or from another install)
        # are stopped too: nothing should run that nobody wants.
        for agent_id, instances in by_agent.items():
            if agent_id not in known:
                stops[5.0] += [
                    i for i in instances if i.id not in self._stopping and i.state != "stopping"
                ]
        if not act or observation.blind is not None:
            return
        if starts:
            placements, failures = await driver.start(starts, observation, pending_by_host)
            template_of = {r.agent.id: r.agent.template for r in starts}
            config_at = {r.agent.id: r.config_at for r in starts}
            for agent_id in [p.agent_id for p in placements] + [f.agent_id for f in failures]:
                STARTS.labels(template_of[agent_id]).inc()
                if agent_id in replacing:
                    RESTARTS.labels(template_of[agent_id]).inc()
            for failure in failures:
                START_FAILURES.labels(template_of[failure.agent_id]).inc()
            deadline = (
                now
                + self._margin
                + max((r.template.health.startup_timeout for r in starts), default=0)
            )
            for p in placements:
                self._pending[p.instance_id] = _Pending(
                    p.agent_id, p.host_id, deadline, config_at[p.agent_id]
                )
                self._waiting.pop(p.agent_id, None)
            self._waiting |= {f.agent_id: f.error for f in failures if not f.agent_fault}
            faults = {f.agent_id: f.error for f in failures if f.agent_fault}
            for agent_id, error in faults.items():
                self._crashed(agent_id, error, now)
        for grace, instances in stops.items():
            if not instances:
                continue
            for instance in instances:
                self._stopping[instance.id] = now + grace + self._margin
            await driver.stop(instances, grace)
        await driver.release(wanted)

    def _crashed(self, agent_id: str, error: str, now: float) -> None:
        """A replica could not start: try again after a growing pause, and after
        `start_failures` failures in a row give up and let the agent turn `failed`."""
        crash = self._crashes.setdefault(agent_id, _CrashLoop())
        crash.failures += 1
        crash.last_error = error
        if crash.failures >= self._start_failures:
            del self._crashes[agent_id]
            self._failures[agent_id] = f"{error} (failed to start {crash.failures} times)"
            self._wake.set()
            return
        crash.retry_at = now + min(MAX_BACKOFF, 2.0 ** (crash.failures - 1))

    def crash_note(self, agent_id: str) -> str | None:
        """Why an agent that is still trying is not running yet, for its view."""
        crash = self._crashes.get(agent_id)
        if crash is None:
            return self._waiting.get(agent_id) or self._observed.get(agent_id)
        wait = max(0.0, crash.retry_at - time.monotonic())
        return f"start failed {crash.failures} time(s), retrying in {wait:.0f}s: {crash.last_error}"

    async def _settle(self, agent_id: str, ready: int, present: int, settled: bool) -> None:
        """Record a status change that follows from what was observed, if any."""
        if not self._acting():
            return
        failure = self._failures.get(agent_id)
        try:
            agent = self._agents.find(agent_id)
        except CortexError:
            return
        plausible = (
            (failure is not None and agent.status in ACTIVE)
            or (agent.status == "terminating" and present == 0 and settled)
            or (
                agent.status in ("deploying", "scaling")
                and settled
                and ready == agent.replicas == present
            )
        )
        if not plausible:
            return
        self._failures.pop(agent_id, None)
        outcome = await self._repo.execute(
            agent_stream(agent_id),
            lambda state: observed(
                state, ready=ready, present=present, settled=settled, failure=failure
            ),
            None,
        )
        if outcome.events:
            log.info(
                "agent status changed",
                agent_id=agent_id,
                status=outcome.state.status,
                reason=outcome.state.status_reason,
            )
        if outcome.state.purged and self._on_purged is not None:
            await self._on_purged(outcome.state)
