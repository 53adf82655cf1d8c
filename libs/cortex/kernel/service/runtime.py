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
import contextlib
import hashlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from opentelemetry.trace import Span, SpanKind, StatusCode

from cortex.contracts import headers as h
from cortex.contracts.errors import ErrorCode
from cortex.contracts.events import QuarantinedEvent
from cortex.contracts.replies import Reply
from cortex.kernel import __version__
from cortex.kernel.bus.connection import connect, disconnect
from cortex.kernel.bus.relay import OutboxRelay
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.bus.streams import ensure_buckets, ensure_streams
from cortex.kernel.context import incoming
from cortex.kernel.errors import Conflict, CortexError, Internal, NotFound, from_validation
from cortex.kernel.events import Quarantine, check_publishable
from cortex.kernel.follow import LogFollower
from cortex.kernel.ids import new_id
from cortex.kernel.keyed_lock import KeyedLocks
from cortex.kernel.leases import LeaseBucket, Singleton, holder_name
from cortex.kernel.logging import get_logger, publish_logs, stop_publishing_logs
from cortex.kernel.metrics import RUNTIME, SERVICES, counter, histogram
from cortex.kernel.projection import Projection, ProjectionRunner
from cortex.kernel.service.admin import AdminServer
from cortex.kernel.service.context import ClaimState, Context, PendingClaim
from cortex.kernel.settings import Settings
from cortex.kernel.store import AlreadyApplied, Claim, EventStore, NewEvent, open_store
from cortex.kernel.tracing import traced_process
from cortex.kernel.waiting import within

Req = TypeVar("Req")

REQUESTS = counter(
    "cortex_service_requests_total",
    "Requests answered by service endpoints",
    ["service", "endpoint", "code"],
    exported_by=RUNTIME,
)
LATENCY = histogram(
    "cortex_service_request_duration_seconds",
    "Time to answer a request",
    ["service", "endpoint"],
    exported_by=RUNTIME,
)
APPENDS = histogram(
    "cortex_eventstore_append_duration_seconds",
    "Time to append to the event store",
    ["service"],
    exported_by=SERVICES,
)
APPENDED = counter(
    "cortex_eventstore_appended_events_total",
    "Events appended to the event store (its events per second are the rate of this)",
    ["service"],
    exported_by=SERVICES,
)

IDEMPOTENCY_TTL = 24 * 3600.0
"""How long a reply is kept for retries that carry the same idempotency key."""

Handler = Callable[[Req, Context], Awaitable[Any]]
Hook = Callable[["ServiceRuntime"], Awaitable[None]]


class _Remembered(msgspec.Struct, frozen=True):
    """What the store keeps under an idempotency key."""

    request_sha256: str
    at: float
    reply: bytes | None = None
    """None: the command was applied (this record was written with its events) and its reply
    is not recorded yet."""


class Endpoint(Generic[Req]):
    def __init__(
        self, verb: str, request_type: type[Req], handler: Handler[Req], *, deferred: bool = False
    ) -> None:
        self.verb = verb
        self.request_type = request_type
        self.handler = handler
        self.decoder = msgspec.json.Decoder(request_type)
        self.micro_name = verb.replace(".", "-")
        self.deferred = deferred
        """Not subscribed until `ServiceRuntime.open_endpoint`."""


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
        self._follower: LogFollower | None = None
        self.leases = LeaseBucket(holder_name())
        """Leases of this process on work one replica does at a time (`singleton`)."""
        self._singletons: list[Singleton] = []
        self._relay_lease: Singleton | None = None
        self._micro: Service | None = None
        self._admin: AdminServer | None = None
        self.quarantine = Quarantine(name)
        self._info: dict[str, str] = {}
        """This instance's `$SRV.INFO` metadata: nats.micro answers from this very dict."""
        self.quarantine.on_change(self._report_quarantine)

    # --- declaring the service -----------------------------------------------------------

    def endpoint(
        self, verb: str, request_type: type[Req], *, deferred: bool = False
    ) -> Callable[[Handler[Req]], Handler[Req]]:
        """`deferred`: this replica takes no request for `verb` until `open_endpoint(verb)`,
        so that one which cannot answer yet (an index still loading) leaves the requests to
        the replicas that can (the queue group only knows subscribed ones)."""

        def register(handler: Handler[Req]) -> Handler[Req]:
            self._endpoints.append(Endpoint(verb, request_type, handler, deferred=deferred))
            return handler

        return register

    async def open_endpoint(self, verb: str) -> None:
        """Start taking requests for the deferred endpoint `verb` (at start, if the service
        does not serve yet)."""
        ep = next(e for e in self._endpoints if e.verb == verb)
        if not ep.deferred:
            return
        ep.deferred = False
        if self._micro is not None and not self._stopped.is_set():
            await self._subscribe(ep)
            await self.nc.flush()

    def on_start(self, hook: Hook) -> Hook:
        """Run after the service is connected and caught up, before it takes requests."""
        self._on_start.append(hook)
        return hook

    def singleton(
        self, name: str, *, begin: Callable[[], Awaitable[None]], end: Callable[[], Awaitable[None]]
    ) -> Singleton:
        """Work that one replica of the service does at a time: `begin` runs on the replica
        that takes the lease `<service>.<name>`, `end` when it loses or gives it up. Started
        once the service serves, stopped first at a stop (before the `on_stop` hooks)."""
        lease = Singleton(
            self.leases,
            f"{self.name}.{name}",
            ttl=self.settings.lease_ttl,
            begin=begin,
            end=end,
        )
        self._singletons.append(lease)
        return lease

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
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        ctx: Context | None = None,
    ) -> int:
        """Append, then publish (through the relay) and update the read models, so that the
        reply to a command already reflects it in this replica's queries.

        An event larger than the bus carries is refused first (`too_large`). With the
        command's `ctx`, the command's first append writes its idempotency key's record with
        the events (see `_idempotent`)."""
        self.check_size(stream_id, events)
        pending = ctx.claim if ctx else None
        started = time.perf_counter()
        with pending.writing() if pending else contextlib.nullcontext() as claim:
            version = await self.store.append(stream_id, events, expected_version, claim=claim)
        APPENDS.labels(self.name).observe(time.perf_counter() - started)
        APPENDED.labels(self.name).inc(len(events))
        if self._nc is not None:
            # The other replicas (and whichever of them relays) hear of it at once; a prompt
            # lost with a connection is covered by their periodic catch-up.
            with contextlib.suppress(Exception):
                await self._nc.publish(self.subjects.appended(self.name), b"")
        if self._relay:
            self._relay.kick()
        if self._runner:
            await self._runner.catch_up("append")
        return version

    def check_size(self, stream_id: str, events: Sequence[NewEvent]) -> None:
        """Refuse (`too_large`, naming the field) an event the bus could not carry."""
        check_publishable(stream_id, events, self.nc.max_payload)

    @property
    def quarantined(self) -> list[QuarantinedEvent]:
        """Stored events this replica skips because it cannot decode them (the latest 20)."""
        return self.quarantine.events

    def _report_quarantine(self) -> None:
        self._info["quarantined"] = msgspec.json.encode(self.quarantine.events).decode()

    async def catch_up(self) -> None:
        """Apply every event the store holds now, whichever replica appended it: for work that
        must not act on a read model a few milliseconds behind (a query that would answer
        not-found, a fan-out to the subscribers of a topic)."""
        if self._runner:
            await self._runner.catch_up()

    async def _prompted(self) -> None:
        if self._runner:
            await self._runner.catch_up()
        if self._relay:
            self._relay.kick()

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
        # After the streams: a line published before `CORTEX_LOGS` exists is stored nowhere.
        publish_logs(self._nc, self.subjects)
        await ensure_buckets(self._js, self.subjects)
        await self.leases.open(
            self._js,
            self.subjects.leases_bucket,
            ttl=s.lease_ttl,
            description="Which replica does the work of a service that runs once at a time.",
            replicas=s.nats_replicas,
        )
        if self._store is not None:
            relay = self._relay = OutboxRelay(self._store, self._js, self.subjects, self.name)
            # One replica relays: the others' appends reach it through the prompts.
            self._relay_lease = Singleton(
                self.leases,
                f"{self.name}.relay",
                ttl=s.lease_ttl,
                begin=relay.start,
                end=relay.stop,
            )
            self._runner = ProjectionRunner(
                self._store, self._projections, quarantine=self.quarantine
            )
            await self._runner.start()
            self._follower = LogFollower(
                self._nc,
                self.subjects.appended(self.name),
                interval=s.catch_up_interval,
                catch_up=self._prompted,
            )
            await self._follower.start()
            self._relay_lease.start()
        for hook in self._on_start:
            await hook(self)
        self._info.update(
            {
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
            }
        )
        self._micro = await add_service(
            self._nc,
            name=self.subjects.service_name(self.name),
            version=self.version,
            description=self.description,
            queue_group=self.subjects.queue_group(self.name),
            stats_handler=self._endpoint_stats,
            metadata=self._info,
        )
        for ep in self._endpoints:
            if not ep.deferred:
                await self._subscribe(ep)
        # Subscriptions sit in the client's buffer until flushed; ready means reachable.
        await self._nc.flush()
        self._serving = True
        for lease in self._singletons:
            lease.start()
        self.log.info(
            "service started",
            version=self.version,
            admin_url=self._admin.url,
            store=self._store.location if self._store else None,
            endpoints=len(self._endpoints),
        )

    async def _subscribe(self, ep: Endpoint[Any]) -> None:
        assert self._micro is not None
        self._stats[ep.micro_name] = _EndpointStats()
        await self._micro.add_endpoint(
            name=ep.micro_name,
            subject=self.subjects.command(self.name, ep.verb),
            handler=self._dispatcher(ep),
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
        for lease in reversed(self._singletons):
            await self._stop_step(f"stop {lease.name}", lease.stop(), grace + 5)
        for hook in reversed(self._on_stop):
            name = getattr(hook, "__qualname__", repr(hook))
            await self._stop_step(f"stop hook {name}", hook(self), grace + 5)
        if self._relay_lease:
            await self._stop_step("flush the outbox relay", self._relay_lease.stop(), 15)
        if self._follower:
            await self._stop_step("stop following the log", self._follower.stop(), 5)
        if self._runner:
            await self._stop_step("save read models", self._runner.save(), grace + 5)
        if self._nc:
            await stop_publishing_logs(self._nc)
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
        correlation_id = hdrs.get(h.CORRELATION_ID) or new_id()
        # The request's correlation id and trace, for everything the handler logs and sends.
        with incoming(
            hdrs,
            f"{self.name}/{ep.verb}",
            SpanKind.SERVER,
            correlation_id=correlation_id,
            attributes={"rpc.system": "nats", "rpc.service": self.name, "rpc.method": ep.verb},
        ) as span:
            ctx = Context(
                correlation_id=correlation_id,
                actor=hdrs.get(h.ACTOR),
                idempotency_key=hdrs.get(h.IDEMPOTENCY_KEY) or None,
                log=self.log.bind(endpoint=ep.verb),
            )
            await self._serve_request(ep, request, ctx, span)

    async def _serve_request(
        self, ep: Endpoint[Any], request: Request, ctx: Context, span: Span
    ) -> None:
        started = time.perf_counter()
        if ctx.idempotency_key:
            reply = await self._idempotent(ep, request.data, ctx)
        else:
            reply = await self._answer(ep, request.data, ctx)
        if reply.error is not None:
            span.set_attribute("cortex.error_code", reply.error.code.value)
            if reply.error.code in _RETRYABLE:  # the service's failure, not the caller's
                span.set_status(StatusCode.ERROR, reply.error.message)
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
            result = await self._handle(ep, body, ctx)
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

    async def _handle(self, ep: Endpoint[Any], body: Any, ctx: Context) -> Any:
        """The handler's answer. A `not_found` may come from a read model a few milliseconds
        behind another replica's append: if catching up brings new events, ask once more."""
        try:
            return await ep.handler(body, ctx)
        except NotFound:
            if self._runner is None:
                raise
            before = self._runner.position
            await self._runner.catch_up()
            if self._runner.position == before:
                raise
        return await ep.handler(body, ctx)

    async def _idempotent(self, ep: Endpoint[Any], data: bytes, ctx: Context) -> Reply:
        """A command with an idempotency key runs once, across every replica, and each request
        with the key gets the reply of that one run, for a day; the same key with another body
        is a `conflict`.

        The key's record is claimed in the store with the events of the command's first
        append, so of two replicas running the command at once only one appends and the other
        returns the winner's reply. After the handler, its reply replaces the claim. A handler
        that appended nothing records its reply only where no replica recorded one first. The
        in-process lock is a fast path: a replica does not race itself."""
        assert ctx.idempotency_key is not None
        key = _record_key(ep.verb, ctx.actor, ctx.idempotency_key)
        digest = hashlib.sha256(data).hexdigest()
        async with self._key_locks.hold(key):
            raw = await self.store.get_meta(key)
            seen = _recall(raw)
            if seen is not None:
                return await self._recorded(key, digest, seen, ctx)
            pending = PendingClaim(Claim(key, _record(digest), replaces=raw))
            reply = await self._answer(ep, data, replace(ctx, claim=pending))
            pending.close()
            if pending.state is ClaimState.LOST:
                return await self._recorded(key, digest, None, ctx)
            applied = pending.state is ClaimState.WON
            if not applied and reply.error is not None and reply.error.code in _RETRYABLE:
                return reply
            record = _record(digest, reply)
            if applied:
                await self.store.put_meta(key, record)
                return reply
            try:
                await self.store.claim(Claim(key, record, replaces=raw))
            except AlreadyApplied:
                # Another replica applied the command meanwhile: its reply is the one.
                return await self._recorded(key, digest, None, ctx)
            return reply

    async def _recorded(
        self, key: str, digest: str, seen: _Remembered | None, ctx: Context
    ) -> Reply:
        """The reply recorded under the key. While the command is applied but its reply not
        recorded (another replica is finishing it, or stopped before it could), wait half the
        request timeout, so that a caller waiting the usual timeout still hears why."""
        deadline = time.monotonic() + self.settings.request_timeout / 2
        pause = 0.01
        while True:
            if seen is not None and seen.request_sha256 != digest:
                return _refusal(
                    f"idempotency key {ctx.idempotency_key!r} was already used with a "
                    "different request",
                    ctx,
                )
            if seen is not None and seen.reply is not None:
                return msgspec.json.decode(seen.reply, type=Reply)
            if time.monotonic() >= deadline:
                return _refusal(
                    f"the request with idempotency key {ctx.idempotency_key!r} was applied, "
                    "but its reply was lost (the replica that applied it stopped, or has not "
                    "finished, before answering); it is not applied again: read the current "
                    "state instead",
                    ctx,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
            seen = _recall(await self.store.get_meta(key))


def _record_key(verb: str, actor: str | None, key: str) -> str:
    # Hashed, so that any key a client sends fits every store's key rules; with the actor, so
    # that two callers' keys never meet.
    digest = hashlib.sha256(f"{actor or ''}\0{key}".encode()).hexdigest()
    return f"idem:{verb}:{digest}"


def _record(digest: str, reply: Reply | None = None) -> bytes:
    encoded = msgspec.json.encode(reply) if reply is not None else None
    return msgspec.msgpack.encode(_Remembered(digest, time.time(), encoded))


def _recall(raw: bytes | None) -> _Remembered | None:
    """The record under a key, unless there is none or it expired."""
    if raw is None:
        return None
    seen = msgspec.msgpack.decode(raw, type=_Remembered)
    return seen if time.time() - seen.at < IDEMPOTENCY_TTL else None


def _refusal(message: str, ctx: Context) -> Reply:
    return Reply(
        error=Conflict(message, details={"idempotency_key": ctx.idempotency_key}).to_contract()
    )


_RETRYABLE = {ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.INTERNAL}
"""Outcomes a retry may change, so they are not remembered against an idempotency key."""


def run_service(runtime: ServiceRuntime) -> None:
    """Entry point of a service's `__main__`: run until a signal, exit 0 after a clean stop.
    A refusal the platform says in words (a store newer than this version, streams JetStream
    cannot place) ends it with that sentence and status 1, not a traceback."""
    with traced_process(runtime.settings, runtime.name):
        try:
            asyncio.run(runtime.run())
        except CortexError as exc:
            runtime.log.error("cannot run", error=exc.message)
            raise SystemExit(1) from None
