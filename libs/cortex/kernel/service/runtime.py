"""The service runtime: NATS endpoints, the event store, the relay, projections, the admin port.

A service declares its endpoints and projections and calls `run()`:

    runtime = ServiceRuntime("lifecycle", settings, projections=[agents])

    @runtime.endpoint("agent.scale", ScaleAgent)
    async def scale(cmd: ScaleAgent, ctx: Context) -> AgentView: ...

    asyncio.run(runtime.run())

Each endpoint is a `nats.micro` endpoint on `cortex.<service>.<verb>` in the service's queue
group, so replicas share the load and `$SRV.PING/INFO/STATS` find them. The runtime decodes
the body into the endpoint's Struct (a bad body is an `invalid` reply naming the field), runs the
handler in its own task, and answers `{"result": ...}` or `{"error": ...}`; an unexpected
exception is logged with its traceback and answered as `internal`, never shown on the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from prometheus_client import Counter, Histogram

from cortex.contracts import headers as h
from cortex.contracts.errors import ErrorCode
from cortex.contracts.replies import Reply
from cortex.kernel import __version__
from cortex.kernel.bus.connection import connect, disconnect
from cortex.kernel.bus.relay import OutboxRelay
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_buckets, ensure_streams
from cortex.kernel.errors import Conflict, CortexError, Internal, from_validation
from cortex.kernel.ids import new_id
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.logging import get_logger
from cortex.kernel.projection import Projection, ProjectionRunner
from cortex.kernel.service.admin import AdminServer
from cortex.kernel.service.context import Context
from cortex.kernel.settings import Settings
from cortex.kernel.store import EventStore, NewEvent, open_store
from cortex.kernel.waiting import within

Req = TypeVar("Req")

REQUESTS = Counter(
    "cortex_service_requests_total",
    "Requests answered by service endpoints",
    ["service", "endpoint", "code"],
)
LATENCY = Histogram(
    "cortex_service_request_duration_seconds",
    "Time to answer a request",
    ["service", "endpoint"],
)
APPENDS = Histogram(
    "cortex_eventstore_append_duration_seconds",
    "Time to append to the event store",
    ["service"],
)

IDEMPOTENCY_TTL = 24 * 3600.0
"""How long a reply is kept for retries that carry the same idempotency key."""

Handler = Callable[[Req, Context], Awaitable[Any]]
Hook = Callable[["ServiceRuntime"], Awaitable[None]]


class _Remembered(msgspec.Struct, frozen=True):
    request_sha256: str
    reply: bytes
    at: float


class Endpoint(Generic[Req]):
    def __init__(self, verb: str, request_type: type[Req], handler: Handler[Req]) -> None:
        self.verb = verb
        self.request_type = request_type
        self.handler = handler
        self.decoder = msgspec.json.Decoder(request_type)
        self.micro_name = verb.replace(".", "-")


class _EndpointStats:
    """What `$SRV.STATS` reports in each endpoint's `data`: the framework itself only sees the
    hand-off to a task, not the outcome or the time a request really took."""

    __slots__ = ("errors", "requests", "seconds")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.seconds = 0.0

    def to_dict(self) -> dict[str, float]:
        average = self.seconds / self.requests * 1000 if self.requests else 0.0
        return {"requests": self.requests, "errors": self.errors, "average_ms": average}


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        projections: Sequence[Projection] = (),
        description: str = "",
        version: str = __version__,
        max_concurrency: int = 256,
        stateful: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """`stateful=False`: a process with endpoints but no event store (an agent host)."""
        self.name = name
        self.settings = settings
        self.version = version
        self.description = description or f"CodeValdCortex {name} service"
        self.subjects = settings.subjects()
        self.log = get_logger(service=name)
        self.stateful = stateful
        self._metadata = metadata or {}
        self._projections = list(projections)
        self._endpoints: list[Endpoint[Any]] = []
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._key_locks = KeyedLocks()
        self._stats: dict[str, _EndpointStats] = {}
        self._checks: dict[str, Callable[[], bool]] = {}
        self._reconnect_hooks: list[Callable[[], None]] = []
        self._nats_connected = False
        self._serving = False
        self._stopped = asyncio.Event()
        self._store: EventStore | None = None
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._relay: OutboxRelay | None = None
        self._runner: ProjectionRunner | None = None
        self._micro: Service | None = None
        self._admin: AdminServer | None = None

    # --- declaring the service -----------------------------------------------------------

    def endpoint(
        self, verb: str, request_type: type[Req]
    ) -> Callable[[Handler[Req]], Handler[Req]]:
        def register(handler: Handler[Req]) -> Handler[Req]:
            self._endpoints.append(Endpoint(verb, request_type, handler))
            return handler

        return register

    def on_start(self, hook: Hook) -> Hook:
        """Run after the service is connected and caught up, before it takes requests."""
        self._on_start.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        """Run after requests stopped and in-flight ones finished, before state is flushed."""
        self._on_stop.append(hook)
        return hook

    # --- what handlers use ---------------------------------------------------------------

    @property
    def store(self) -> EventStore:
        assert self._store is not None, "the runtime is not started"
        return self._store

    @property
    def nc(self) -> NATS:
        assert self._nc is not None, "the runtime is not started"
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "the runtime is not started"
        return self._js

    @property
    def admin_url(self) -> str | None:
        return self._admin.url if self._admin else None

    def client(self) -> ServiceClient:
        return ServiceClient(self.nc, self.subjects, timeout=self.settings.request_timeout)

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int | None
    ) -> int:
        """Append, then publish (through the relay) and update the read models, so that the
        reply to a command already reflects it in this replica's queries."""
        started = time.perf_counter()
        version = await self.store.append(stream_id, events, expected_version)
        APPENDS.labels(self.name).observe(time.perf_counter() - started)
        if self._relay:
            self._relay.kick()
        if self._runner:
            await self._runner.catch_up()
        return version

    async def rebuild_projections(self) -> int:
        assert self._runner is not None
        return await self._runner.rebuild()

    def readiness(self) -> dict[str, bool]:
        checks = {
            "nats": self._nats_connected,
            "caught_up": self._runner.caught_up if self._runner else True,
            "serving": self._serving,
        }
        checks.update({name: check() for name, check in self._checks.items()})
        return checks

    def ready_when(self, name: str, check: Callable[[], bool]) -> None:
        """Another condition `/ready` waits for (e.g. an index caught up with a stream)."""
        self._checks[name] = check

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self._admin = AdminServer(s.admin_host, s.admin_port, self.readiness)
        await self._admin.start()
        if self.stateful:
            self._store = await open_store(
                s.effective_store, self.name, sqlite_synchronous=s.sqlite_synchronous
            )
        self._nc = await connect(s, f"{self.subjects.root}-{self.name}", on_state=self._on_nats)
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, self.subjects)
        await ensure_buckets(self._js, self.subjects)
        if self._store is not None:
            self._relay = OutboxRelay(self._store, self._js, self.subjects, self.name)
            await self._relay.start()
            self._runner = ProjectionRunner(self._store, self._projections)
            await self._runner.start()
        for hook in self._on_start:
            await hook(self)
        self._micro = await add_service(
            self._nc,
            name=self.subjects.service_name(self.name),
            version=self.version,
            description=self.description,
            queue_group=self.subjects.queue_group(self.name),
            stats_handler=self._endpoint_stats,
            metadata={
                "service": self.name,
                "host": socket.gethostname(),
                "pid": str(os.getpid()),
                "admin_url": self._admin.url,
                **(
                    {"store": self._store.kind, "store_location": self._store.location}
                    if self._store
                    else {}
                ),
                **self._metadata,
            },
        )
        for ep in self._endpoints:
            self._stats[ep.micro_name] = _EndpointStats()
            await self._micro.add_endpoint(
                name=ep.micro_name,
                subject=self.subjects.command(self.name, ep.verb),
                handler=self._dispatcher(ep),
            )
        # Subscriptions sit in the client's buffer until flushed; ready means reachable.
        await self._nc.flush()
        self._serving = True
        self.log.info(
            "service started",
            version=self.version,
            admin_url=self._admin.url,
            store=self._store.location if self._store else None,
            endpoints=len(self._endpoints),
        )

    async def stop(self) -> None:
        """Graceful: stop taking requests, finish in-flight ones, flush events and read models.

        Every step has a time limit and a step that overruns is named in the log and left
        behind, so a stop always ends: what it could not flush is after the relay's and the
        projections' checkpoints and is picked up by the next start.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._serving = False
        grace = self.settings.shutdown_grace
        if self._micro:
            await self._stop_step("stop endpoints", self._micro.stop(), grace)
        if self._inflight:
            _, late = await asyncio.wait(self._inflight, timeout=grace)
            for task in late:
                task.cancel()
        for hook in reversed(self._on_stop):
            name = getattr(hook, "__qualname__", repr(hook))
            await self._stop_step(f"stop hook {name}", hook(self), grace + 5)
        if self._relay:
            await self._stop_step("flush the outbox relay", self._relay.stop(), 10)
        if self._runner:
            await self._stop_step("save read models", self._runner.save(), grace + 5)
        if self._nc and not await disconnect(self._nc, grace):
            self.log.warning("nats not drained within the grace period; closed", timeout=grace)
        if self._store:
            await self._stop_step("close the event store", self._store.close(), grace)
        if self._admin:
            await self._stop_step("stop the admin server", self._admin.stop(), 5)
        self.log.info("service stopped")

    async def _stop_step(self, what: str, step: Awaitable[object], timeout: float) -> bool:
        try:
            if await within(step, timeout):
                return True
            self.log.warning("stop step overran; left behind", step=what, timeout=timeout)
        except Exception:
            self.log.exception("stop step failed", step=what)
        return False

    async def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
            self.log.info("stopping", reason="signal")
        finally:
            await self.stop()

    # --- requests ------------------------------------------------------------------------

    def _endpoint_stats(self, endpoint: Any) -> dict[str, float]:
        stats = self._stats.get(endpoint.name)
        return stats.to_dict() if stats else {}

    def on_reconnect(self, hook: Callable[[], None]) -> None:
        """Called each time the NATS connection comes back after it was lost."""
        self._reconnect_hooks.append(hook)

    def _on_nats(self, connected: bool) -> None:
        back = connected and not self._nats_connected and self._serving
        self._nats_connected = connected
        if back:
            for hook in self._reconnect_hooks:
                hook()

    def _dispatcher(self, ep: Endpoint[Any]) -> Callable[[Request], Awaitable[None]]:
        async def dispatch(request: Request) -> None:
            # The framework awaits handlers one at a time per endpoint; a task per request
            # lets a slow command (a long wait for an agent) not hold up the others.
            await self._slots.acquire()
            task = asyncio.create_task(self._serve(ep, request))
            self._inflight.add(task)
            task.add_done_callback(self._done)

        return dispatch

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _serve(self, ep: Endpoint[Any], request: Request) -> None:
        hdrs = request.headers or {}
        ctx = Context(
            correlation_id=hdrs.get(h.CORRELATION_ID) or new_id(),
            actor=hdrs.get(h.ACTOR),
            idempotency_key=hdrs.get(h.IDEMPOTENCY_KEY) or None,
            log=self.log.bind(endpoint=ep.verb, correlation_id=hdrs.get(h.CORRELATION_ID)),
        )
        started = time.perf_counter()
        if ctx.idempotency_key:
            reply = await self._idempotent(ep, request.data, ctx)
        else:
            reply = await self._answer(ep, request.data, ctx)
        code = "ok" if reply.error is None else reply.error.code.value
        elapsed = time.perf_counter() - started
        REQUESTS.labels(self.name, ep.verb, code).inc()
        LATENCY.labels(self.name, ep.verb).observe(elapsed)
        stats = self._stats.get(ep.micro_name)
        if stats:
            stats.requests += 1
            stats.seconds += elapsed
            stats.errors += reply.error is not None
        extra = None
        if reply.error is not None:
            extra = {
                "Nats-Service-Error": reply.error.message[:200],
                "Nats-Service-Error-Code": reply.error.code.value,
            }
        try:
            await request.respond(msgspec.json.encode(reply), headers=extra)
        except Exception as exc:  # the requester is gone or NATS is down; it will retry
            ctx.log.warning("reply not sent", error=str(exc) or repr(exc))

    async def _answer(self, ep: Endpoint[Any], data: bytes, ctx: Context) -> Reply:
        try:
            body = ep.decoder.decode(data or b"{}")
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return Reply(error=from_validation(exc).to_contract())
        try:
            result = await ep.handler(body, ctx)
        except CortexError as exc:
            return Reply(error=exc.to_contract())
        except Exception:
            ctx.log.exception("handler failed")
            return Reply(
                error=Internal(
                    f"{self.name} failed to handle {ep.verb} "
                    f"(correlation id {ctx.correlation_id}); the service log has the details"
                ).to_contract()
            )
        return Reply(result=msgspec.Raw(msgspec.json.encode(result)))

    async def _idempotent(self, ep: Endpoint[Any], data: bytes, ctx: Context) -> Reply:
        """The first reply to a key is kept for a day; a retry gets it back without a second
        effect, and the same key with another body is a `conflict`."""
        key = f"idem:{ep.verb}:{ctx.idempotency_key}"
        digest = hashlib.sha256(data).hexdigest()
        async with self._key_locks.hold(key):
            raw = await self.store.get_meta(key)
            if raw is not None:
                seen = msgspec.msgpack.decode(raw, type=_Remembered)
                if time.time() - seen.at < IDEMPOTENCY_TTL:
                    if seen.request_sha256 != digest:
                        return Reply(
                            error=Conflict(
                                f"idempotency key {ctx.idempotency_key!r} was already used "
                                "with a different request"
                            ).to_contract()
                        )
                    return msgspec.json.decode(seen.reply, type=Reply)
            reply = await self._answer(ep, data, ctx)
            if reply.error is None or reply.error.code not in _RETRYABLE:
                remembered = _Remembered(digest, msgspec.json.encode(reply), time.time())
                await self.store.put_meta(key, msgspec.msgpack.encode(remembered))
            return reply


_RETRYABLE = {ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.INTERNAL}
"""Outcomes a retry may change, so they are not remembered against an idempotency key."""


def run_service(runtime: ServiceRuntime) -> None:
    """Entry point of a service's `__main__`: run until a signal, exit 0 after a clean stop."""
    asyncio.run(runtime.run())
