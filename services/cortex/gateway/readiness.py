"""What the gateway's `/ready` waits for besides its own NATS connection: the services and the
agent hosts the platform was started with (`cortex up` names them in `CORTEX_READY_SERVICES`
and `CORTEX_READY_HOSTS`).

It gates the start, like a startup probe: once everything named was seen, it stays ready.
A service or host that goes away later shows in `/api/v1/status` and in the registry's
health, not as an unready gateway that load balancers would stop sending to.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from cortex.contracts.registry import HostView
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import CortexError

POLL = 0.2


def names(listing: str) -> list[str]:
    return [n.strip() for n in listing.split(",") if n.strip()]


class PlatformReadiness:
    def __init__(self, services: list[str], hosts: list[str]) -> None:
        self.services = services
        self.hosts = hosts
        self._missing_services = set(services)
        self._missing_hosts = set(hosts)

    def checks(self) -> dict[str, bool]:
        """`services` and `hosts`, each only when something was named for it."""
        out: dict[str, bool] = {}
        if self.services:
            out["services"] = not self._missing_services
        if self.hosts:
            out["hosts"] = not self._missing_hosts
        return out

    @property
    def missing(self) -> list[str]:
        """What is still awaited, worded for a person."""
        return [f"service {s}" for s in sorted(self._missing_services)] + [
            f"agent host {h}" for h in sorted(self._missing_hosts)
        ]

    async def watch(self, nc: NATS, subjects: Subjects) -> None:
        """Look until everything named has been seen, then return."""
        client = ServiceClient(nc, subjects, timeout=1.0)
        while self._missing_services or self._missing_hosts:
            with contextlib.suppress(CortexError, NatsError, TimeoutError):
                await self._look(nc, subjects, client)
            if self._missing_services or self._missing_hosts:
                await asyncio.sleep(POLL)

    async def _look(self, nc: NATS, subjects: Subjects, client: ServiceClient) -> None:
        # A service adds its endpoints only once it has caught up with its events, so one that
        # answers a ping is ready.
        for service in sorted(self._missing_services):
            with contextlib.suppress(NatsError, TimeoutError):
                await nc.request(f"$SRV.PING.{subjects.service_name(service)}", timeout=0.5)
                self._missing_services.discard(service)
        if self._missing_hosts and "registry" not in self._missing_services:
            hosts = await client.call("registry", "host.list", {}, list[HostView])
            self._missing_hosts -= {h.id for h in hosts if h.health == "healthy"}
