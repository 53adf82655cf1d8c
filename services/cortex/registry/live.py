"""What heartbeats say that never becomes an event: when each host and instance was last heard
from, a host's CPU and memory, a replica's state and counters.

It changes with every heartbeat, so recording it as events would write thousands of facts
every interval that nobody needs to replay. It lives in memory only; after a registry restart
every known host and instance starts as heard from "now" (see `seed`), so that a restart does
not declare the fleet dead, and the next heartbeats fill in the rest.

Times are `time.monotonic()` seconds, immune to wall-clock steps; the queries turn them into
datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable

from cortex.contracts.registry import Heartbeat, ReplicaReport
from cortex.registry.domain import HostState


class HostLive:
    __slots__ = ("cpu_percent", "rss_bytes", "seen")

    def __init__(self, seen: float, cpu_percent: float = 0.0, rss_bytes: int = 0) -> None:
        self.seen = seen
        self.cpu_percent = cpu_percent
        self.rss_bytes = rss_bytes


class LiveData:
    def __init__(self) -> None:
        self.hosts: dict[str, HostLive] = {}
        self.instance_seen: dict[str, float] = {}
        """An instance's freshness: the last time a heartbeat chunk listed it."""
        self.reports: dict[str, ReplicaReport] = {}
        """The last report of each instance (state, inflight, counters, last error)."""

    def heard(self, beat: Heartbeat, now: float) -> None:
        host = self.hosts.get(beat.host_id)
        if host is None:
            self.hosts[beat.host_id] = HostLive(now, beat.cpu_percent, beat.rss_bytes)
        else:
            host.seen = now
            host.cpu_percent = beat.cpu_percent
            host.rss_bytes = beat.rss_bytes
        seen = self.instance_seen
        reports = self.reports
        for replica in beat.replicas:
            seen[replica.instance_id] = now
            reports[replica.instance_id] = replica

    def host_seen(self, host_id: str, now: float) -> float:
        """When the host was last heard from; one this replica never heard from (registered
        by another replica, say) starts counting now."""
        host = self.hosts.get(host_id)
        if host is None:
            host = self.hosts[host_id] = HostLive(now)
        return host.seen

    def seed(self, hosts: Iterable[HostState], now: float) -> None:
        """After a restart: everything the events say is registered was heard from now."""
        for host in hosts:
            self.hosts.setdefault(host.host_id, HostLive(now))
            for iid in host.instances:
                self.instance_seen.setdefault(iid, now)

    def forget_instance(self, instance_id: str) -> None:
        self.instance_seen.pop(instance_id, None)
        self.reports.pop(instance_id, None)

    def forget_host(self, host_id: str) -> None:
        self.hosts.pop(host_id, None)

    def prune(self, registered: Iterable[str], older_than: float) -> None:
        """Drop what is kept about instances that are not registered and have not been heard
        from for a while (stale reports, ids listed only in a late chunk)."""
        keep = set(registered)
        stale = [i for i, t in self.instance_seen.items() if t < older_than and i not in keep]
        for iid in stale:
            self.forget_instance(iid)
