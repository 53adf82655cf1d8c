"""The runners of one replica: which executions it runs, resuming, taking over, cancelling.

- A runner is an asyncio task per execution, started when the execution is (`launch`), and for
  every running execution nobody holds a lease on: at start (a restart resumes what it ran) and
  at every scan (a replica that died stops renewing its leases, and they expire).
- Which executions are running comes from the event store itself (every replica reads the
  events of all), not from this replica's read model, which does not see other replicas'
  appends until it appends itself.
- A cancel is published on core NATS (`subjects.execution_cancelled`); each replica listens on
  the wildcard and cancels the runner task it has, abandoning in-flight requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cortex.contracts.workflow import WorkflowTemplateSpec
from cortex.kernel.bus.discovery import scatter
from cortex.kernel.leases import LeaseBucket, holder_name
from cortex.kernel.logging import get_logger
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.waiting import cancel_and_wait

from .domain import (
    CODEC,
    FINISHED,
    ExecutionState,
    evolve_execution,
    execution_of,
    execution_stream,
)
from .egress import EgressPolicy, GuardedTransport, parse_allow
from .journal import Journal
from .leases import open_leases
from .metrics import RUNNING
from .platform_ports import PORTS_INTERVAL, own_ports, ports_in
from .runner import Runner
from .steps import Tasks

log = get_logger()

TemplateLoader = Callable[[str, str], Awaitable[WorkflowTemplateSpec]]

MAX_REDIRECTS = 10


class Supervisor:
    def __init__(
        self,
        runtime: ServiceRuntime,
        load_template: TemplateLoader,
        *,
        lease_ttl: float,
        scan_interval: float,
    ) -> None:
        self.runtime = runtime
        self._load_template = load_template
        self._lease_ttl = lease_ttl
        self._scan_interval = scan_interval
        self.holder = holder_name()
        self.runners: dict[str, asyncio.Task[None]] = {}
        self._starting: set[str] = set()
        self._running: set[str] = set()
        """Executions whose stream says running, as far as `_position` in the store."""
        self._position = 0
        self._loops: list[asyncio.Task[None]] = []
        self._cancels: Subscription | None = None
        self._http: httpx.AsyncClient | None = None
        self._egress = EgressPolicy()
        self._leases: LeaseBucket | None = None
        self._tasks: Tasks | None = None

    @property
    def leases(self) -> LeaseBucket:
        assert self._leases is not None, "the supervisor is not started"
        return self._leases

    async def start(self, running: list[str], position: int) -> None:
        """`running` and `position`: what the executions read model knows, to scan on from."""
        runtime = self.runtime
        self._running, self._position = set(running), position
        self._leases = await open_leases(runtime.js, runtime.subjects, self.holder, self._lease_ttl)
        settings = runtime.settings
        self._egress = EgressPolicy(parse_allow(settings.http_step_allow), own_ports(settings))
        # No client-wide timeout: each step's own timeout bounds its request.
        self._http = httpx.AsyncClient(
            transport=GuardedTransport(self._egress),
            timeout=None,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
        )
        self._tasks = Tasks(
            runtime.nc,
            runtime.subjects,
            runtime.client(),
            self._http,
            http_max_bytes=settings.http_step_max_bytes,
        )
        self._cancels = await runtime.nc.subscribe(
            runtime.subjects.executions_cancelled(), cb=self._on_cancel
        )
        await self.scan()
        with contextlib.suppress(Exception):  # found again every PORTS_INTERVAL
            await self._find_platform_ports()
        self._loops = [
            asyncio.create_task(self._every(self._lease_ttl / 3, self._renew)),
            asyncio.create_task(self._every(self._scan_interval, self.scan)),
            asyncio.create_task(self._every(PORTS_INTERVAL, self._find_platform_ports)),
        ]

    async def stop(self) -> None:
        """Stop every runner where it is (the next replica or start resumes it) and give up
        the leases, so that takes no lease expiry."""
        await cancel_and_wait(*self._loops)
        if self._cancels is not None:
            with contextlib.suppress(Exception):
                await self._cancels.unsubscribe()
        await cancel_and_wait(*self.runners.values())
        if self._http is not None:
            await self._http.aclose()

    # --- running executions ------------------------------------------------------------------

    async def launch(self, execution_id: str) -> bool:
        """Run the execution here if nobody else does; True if it runs here now."""
        if execution_id in self.runners or execution_id in self._starting:
            return True
        self._starting.add(execution_id)
        try:
            if not await self.leases.claim(execution_id):
                return False
            try:
                runner = await self._runner(execution_id)
            except BaseException:
                await self.leases.release(execution_id)
                raise
            if runner is None:
                await self.leases.release(execution_id)
                return False
            task = asyncio.create_task(self._run(runner))
            self.runners[execution_id] = task
            RUNNING.set(len(self.runners))
            return True
        finally:
            self._starting.discard(execution_id)

    async def _runner(self, execution_id: str) -> Runner | None:
        """A runner from the execution's stream as it is now, or None if it has finished."""
        envelopes = await self.runtime.store.read(execution_stream(execution_id))
        state, version = ExecutionState(), 0
        for envelope, event in self.runtime.quarantine.decoded(CODEC, envelopes, "execution"):
            if event is not None:
                state = evolve_execution(state, event)
            version = envelope.version
        if state.started is None or state.status != "running":
            self._running.discard(execution_id)
            return None
        started = state.started
        template = await self._load_template(started.template, started.template_version)
        first = envelopes[0]
        journal = Journal(
            self.runtime,
            execution_id,
            state,
            version,
            correlation_id=first.correlation_id,
            actor=first.actor,
        )
        assert self._tasks is not None
        return Runner(execution_id, template, journal, self._tasks)

    async def _run(self, runner: Runner) -> None:
        execution_id = runner.execution_id
        try:
            await runner.run()
        except asyncio.CancelledError:
            log.info("runner stopped", execution_id=execution_id)
            raise
        except Exception:
            # A bug or the store gone: the lease is given up, and a scan tries again.
            log.exception("runner failed", execution_id=execution_id)
        finally:
            self.runners.pop(execution_id, None)
            RUNNING.set(len(self.runners))
            await self.leases.release(execution_id)

    async def cancelled(self, execution_id: str) -> None:
        """After `ExecutionCancelled` was appended: stop the runner, wherever it is."""
        self._stop_runner(execution_id)
        try:
            await self.runtime.nc.publish(self.runtime.subjects.execution_cancelled(execution_id))
        except Exception as exc:  # its runner will still lose its next append
            log.warning("cancel not announced", execution_id=execution_id, error=str(exc))

    async def _on_cancel(self, msg: Msg) -> None:
        self._stop_runner(msg.subject.rsplit(".", 1)[-1])

    def _stop_runner(self, execution_id: str) -> None:
        self._running.discard(execution_id)
        task = self.runners.get(execution_id)
        if task is not None:
            task.cancel()

    # --- leases and scans --------------------------------------------------------------------

    async def _every(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await action()
            except Exception as exc:  # NATS or the store away for a moment: next round
                log.warning("workflow background task failed", error=str(exc) or repr(exc))

    async def _find_platform_ports(self) -> None:
        infos = await scatter(self.runtime.nc, "$SRV.INFO")
        found = ports_in(infos, self.runtime.subjects.root + "-")
        self._egress.platform_ports = frozenset(own_ports(self.runtime.settings) | found)

    async def _renew(self) -> None:
        for execution_id in list(self.leases.held):
            if not await self.leases.renew(execution_id):
                log.warning("lease lost; runner stops", execution_id=execution_id)
                self._stop_runner(execution_id)

    async def scan(self) -> None:
        """Catch up with the store, then take every running execution nobody runs."""
        while True:
            batch = await self.runtime.store.read_all(self._position, 1000)
            if not batch:
                break
            for envelope in batch:
                execution_id = execution_of(envelope.stream_id)
                if execution_id is None:
                    continue
                if envelope.type == "execution.started":
                    self._running.add(execution_id)
                elif envelope.type in FINISHED:
                    self._running.discard(execution_id)
            self._position = batch[-1].position
        for execution_id in sorted(self._running - self.runners.keys()):
            try:
                await self.launch(execution_id)
            except Exception as exc:
                log.warning("execution not resumed", execution_id=execution_id, error=str(exc))
