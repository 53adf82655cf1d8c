"""What the gateway holds while it runs: its NATS connection, the service client, tokens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from nats.aio.client import Client as NATS
from nats.micro import add_service

from cortex.contracts.lifecycle import AgentRef, AgentView
from cortex.gateway.auth import principal_of
from cortex.gateway.followers import EventFollowers
from cortex.gateway.history_sources import PrometheusHistory, SampledHistory
from cortex.gateway.readiness import PlatformReadiness, names
from cortex.kernel import __version__
from cortex.kernel.bus.connection import connect, disconnect
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import CortexError, Unavailable
from cortex.kernel.logging import get_logger, publish_logs, stop_publishing_logs
from cortex.kernel.settings import Settings
from cortex.kernel.tokens import TokenRegistry
from cortex.kernel.waiting import cancel_and_wait

T = TypeVar("T")

log = get_logger()

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        required=False,
        description="A fresh value (a UUID) per change. Sent again with the same body, "
        "the change is not made again: the answer is the first one's, for 24 hours, whichever "
        "gateway and service replica the retry reaches. Reused with another body: 409.",
    ),
]
"""The header every change accepts, and passes on to the service that makes the change."""


def admin_token_of(settings: Settings) -> str:
    """`CORTEX_ADMIN_TOKEN`, else the token `cortex up` wrote to the data dir, else none."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.admin_token_file
    return path.read_text().strip() if path.exists() else ""


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subjects = settings.subjects()
        self.tokens = TokenRegistry(admin_token_of(settings), settings.effective_tokens_file)
        self.nats_connected = False
        self._nc: NATS | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.followers = EventFollowers(lambda: self.nc, self.subjects)
        self.platform = PlatformReadiness(
            names(settings.ready_services), names(settings.ready_hosts)
        )
        self._watching: asyncio.Task[None] | None = None
        self.history: SampledHistory | PrometheusHistory = (
            PrometheusHistory(settings.prometheus_url)
            if settings.prometheus_url
            else SampledHistory(settings, lambda: self.nc)
        )

    @property
    def nc(self) -> NATS:
        if self._nc is None or not self.nats_connected:
            raise Unavailable("the gateway is not connected to NATS")
        return self._nc

    @property
    def client(self) -> ServiceClient:
        return ServiceClient(self.nc, self.subjects, timeout=self.settings.request_timeout)

    async def ask(
        self,
        service: str,
        verb: str,
        body: Any,
        reply_type: type[T],
        connection: ASGIConnection[Any, Any, Any, Any],
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """A command or query on behalf of the caller: their token's name is the actor. A
        change passes on the caller's `Idempotency-Key`; the lookups it makes on the way
        (an agent's id from its name) do not. The request's correlation id goes with it
        (`request_context`)."""
        principal = principal_of(connection)
        actor = f"api:{principal.name}" if principal else None
        return await self.client.call(
            service,
            verb,
            body,
            reply_type,
            actor=actor,
            timeout=timeout,
            idempotency_key=idempotency_key,
        )

    async def agent(self, ref: str, connection: ASGIConnection[Any, Any, Any, Any]) -> AgentView:
        """An agent by id or name."""
        return await self.ask("lifecycle", "agent.get", AgentRef(ref), AgentView, connection)

    @contextlib.asynccontextmanager
    async def agent_id(
        self, ref: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AsyncIterator[str]:
        """The id of agent `ref` (an id or a name), for a call to a service that knows agents by
        id only: a user who gave the name reads that name in the call's errors, not an id they
        never typed."""
        agent_id = (await self.agent(ref, connection)).id
        try:
            yield agent_id
        except CortexError as exc:
            if ref != agent_id:
                exc.message = exc.message.replace(agent_id, ref)
                exc.args = (exc.message,)
            raise

    def readiness(self) -> dict[str, bool]:
        return {"nats": self.nats_connected, **self.platform.checks()}

    async def start(self, metadata: dict[str, str]) -> None:
        """Connect in the background: the HTTP port answers (503 until ready) meanwhile."""
        if not self.tokens.has_admin:
            log.warning("no admin token: set CORTEX_ADMIN_TOKEN or create API tokens")
        self._connecting = asyncio.create_task(self._connect(metadata))
        if isinstance(self.history, SampledHistory):
            self.history.start()

    async def _connect(self, metadata: dict[str, str]) -> None:
        nc = await connect(self.settings, f"{self.subjects.root}-gateway", on_state=self._on_state)
        # Listed by `$SRV.INFO` like the services, so that /api/v1/status shows the gateways.
        await add_service(
            nc,
            name=self.subjects.service_name("gateway"),
            version=__version__,
            description="CodeValdCortex HTTP gateway",
            metadata={"service": "gateway", **metadata},
        )
        self._nc = nc
        publish_logs(nc, self.subjects)
        self._watching = asyncio.create_task(self.platform.watch(nc, self.subjects))

    def _on_state(self, connected: bool) -> None:
        self.nats_connected = connected

    async def stop(self) -> None:
        if isinstance(self.history, SampledHistory):
            await self.history.stop()
        for task in (self._connecting, self._watching):
            if task is not None and not task.done():
                await cancel_and_wait(task)
        if self._nc:
            await stop_publishing_logs(self._nc)
            await disconnect(self._nc, self.settings.shutdown_grace)


GatewayDep = NamedDependency[Gateway]
"""How a route handler asks for the gateway: `gw: GatewayDep`."""
