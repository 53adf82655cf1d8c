"""Answers to `host.list`, `host.get`, `instance.list` and `instance.get`: the read model (what
is registered, and its health) joined with the live data (last seen, load, counters)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from cortex.contracts.registry import (
    HostView,
    InstancePage,
    InstanceView,
    ListHosts,
    ListInstances,
)
from cortex.kernel.errors import NotFound
from cortex.kernel.ids import utcnow
from cortex.registry.domain import HostState, InstanceState
from cortex.registry.live import LiveData
from cortex.registry.projections import HostsProjection


class RegistryQueries:
    def __init__(self, projection: HostsProjection, live: LiveData) -> None:
        self._projection = projection
        self._live = live

    def list_hosts(self, query: ListHosts) -> list[HostView]:
        now = _Now()
        hosts = self._projection.hosts()
        return [
            self._host_view(hosts[host_id], now)
            for host_id in sorted(hosts)
            if query.status is None or hosts[host_id].health == query.status
        ]

    def get_host(self, host_id: str) -> HostView:
        host = self._projection.host(host_id)
        if host is None:
            raise NotFound(f"no host {host_id!r} is registered")
        return self._host_view(host, _Now())

    def list_instances(self, query: ListInstances) -> InstancePage:
        now = _Now()
        items: list[InstanceView] = []
        more = False
        for iid, host_id, instance in self._in_order(query.host, query.after, query.agent):
            if query.agent is not None and instance.agent_id != query.agent:
                continue
            if query.status is not None and instance.health != query.status:
                continue
            if len(items) == query.limit:
                more = True
                break
            items.append(self._instance_view(iid, host_id, instance, now))
        return InstancePage(items=items, next=items[-1].id if more else None)

    def _in_order(
        self, host_id: str | None, after: str | None, agent_id: str | None = None
    ) -> Iterator[tuple[str, str, InstanceState]]:
        if agent_id is not None and host_id is None:
            # One agent's instances from the index, not a walk over the whole fleet.
            for iid, located_host, instance in self._projection.instances_of(agent_id):
                if after is None or iid > after:
                    yield iid, located_host, instance
            return
        if host_id is not None:
            host = self._projection.host(host_id)
            if host is None:
                return
            for iid in sorted(i for i in host.instances if after is None or i > after):
                yield iid, host_id, host.instances[iid]
            return
        for iid in self._projection.instance_ids(after):
            found = self._projection.instance(iid)
            if found is not None:
                yield iid, *found

    def get_instance(self, instance_id: str) -> InstanceView:
        found = self._projection.instance(instance_id)
        if found is None:
            raise NotFound(f"no instance {instance_id!r} is registered")
        host_id, instance = found
        return self._instance_view(instance_id, host_id, instance, _Now())

    def _host_view(self, host: HostState, now: _Now) -> HostView:
        live = self._live.hosts.get(host.host_id)
        return HostView(
            id=host.host_id,
            hostname=host.hostname,
            pid=host.pid,
            health=host.health,
            registered_at=host.registered_at,
            last_seen=now.wall(live.seen) if live else None,
            cpu_percent=live.cpu_percent if live else 0.0,
            rss_bytes=live.rss_bytes if live else 0,
            replicas=len(host.instances),
            capacity=host.capacity,
        )

    def _instance_view(
        self, instance_id: str, host_id: str, instance: InstanceState, now: _Now
    ) -> InstanceView:
        report = self._live.reports.get(instance_id)
        seen = self._live.instance_seen.get(instance_id)
        return InstanceView(
            id=instance_id,
            agent_id=instance.agent_id,
            agent_name=instance.agent_name,
            host_id=host_id,
            health=instance.health,
            # Until the first heartbeat after a registry restart there is no report; a
            # registered replica is most likely running.
            state=report.state if report else "running",
            inflight=report.inflight if report else 0,
            busy=report.busy if report else False,
            handled=report.handled if report else 0,
            failures=report.failures if report else 0,
            last_error=report.last_error if report else None,
            registered_at=instance.registered_at,
            last_seen=now.wall(seen) if seen is not None else None,
        )


class _Now:
    """One reading of both clocks per query, so that every row of an answer agrees."""

    __slots__ = ("monotonic", "utc")

    def __init__(self) -> None:
        self.monotonic = time.monotonic()
        self.utc = utcnow()

    def wall(self, seen: float) -> datetime:
        return self.utc - timedelta(seconds=self.monotonic - seen)
