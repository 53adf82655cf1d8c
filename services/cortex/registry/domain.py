"""The Host aggregate: one agent host and the instances (replicas) it runs, as pure functions.

Stream `host-<host_id>`, stream type `host`. `evolve` folds an event into the state; the
deciders `on_heartbeat` and `on_clock` return the events a heartbeat or a tick of the health
clock calls for, and nothing when nothing changes (which is most of the time).

`evolve` updates the state in place and returns it: a host may run 10,000 instances, and
copying that map for every event would make registering a thousand of them quadratic. The
deciders never modify the state they are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from cortex.contracts.registry import (
    Health,
    Heartbeat,
    HostDeregistered,
    HostHealthChanged,
    HostRegistered,
    InstanceDeregistered,
    InstanceHealthChanged,
    InstanceRegistered,
)
from cortex.kernel.events import EventCodec

STREAM_TYPE = "host"

HostEvent = (
    HostRegistered
    | HostHealthChanged
    | HostDeregistered
    | InstanceRegistered
    | InstanceHealthChanged
    | InstanceDeregistered
)

codec = EventCodec(
    HostRegistered,
    HostHealthChanged,
    HostDeregistered,
    InstanceRegistered,
    InstanceHealthChanged,
    InstanceDeregistered,
)

STOPPED = "stopped"
HOST_RESTARTED = "host restarted"
GONE = "gone"
HOST_DEREGISTERED = "host deregistered"

_RANK: dict[str, int] = {"healthy": 0, "unhealthy": 1, "gone": 2}


def stream_id(host_id: str) -> str:
    return f"host-{host_id}"


def host_of(stream: str) -> str | None:
    return stream[5:] if stream.startswith("host-") else None


class InstanceState(msgspec.Struct, kw_only=True):
    agent_id: str
    agent_name: str
    started_at: datetime
    boot_id: str
    """The host boot the instance was registered under: a new boot ends it."""
    registered_at: datetime
    health: Health = "healthy"


class HostState(msgspec.Struct, kw_only=True):
    host_id: str
    boot_id: str
    hostname: str
    pid: int
    started_at: datetime
    registered_at: datetime
    capacity: int = 0
    health: Health = "healthy"
    instances: dict[str, InstanceState] = {}


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """When silence turns into `unhealthy`, `gone` and deregistration, in seconds."""

    interval: float
    unhealthy_after: int
    gone_after: int
    forget_hosts_after: float = 600.0
    """How long a host stays `gone` before it is deregistered."""

    @property
    def unhealthy_s(self) -> float:
        return self.interval * self.unhealthy_after

    @property
    def gone_s(self) -> float:
        return self.interval * self.gone_after

    @property
    def deregister_instance_s(self) -> float:
        return 2 * self.gone_s

    @property
    def deregister_host_s(self) -> float:
        return self.gone_s + self.forget_hosts_after

    def health_for(self, silent_for: float) -> Health:
        if silent_for > self.gone_s:
            return "gone"
        if silent_for > self.unhealthy_s:
            return "unhealthy"
        return "healthy"


# --- evolve ----------------------------------------------------------------------------------


def evolve(state: HostState | None, event: object, at: datetime) -> HostState | None:
    """Fold one event in; `at` is when it happened (the envelope's `occurred_at`). None is a
    host that is not registered (never was, or was deregistered)."""
    if isinstance(event, HostRegistered):
        return HostState(
            host_id=event.host_id,
            boot_id=event.boot_id,
            hostname=event.hostname,
            pid=event.pid,
            started_at=event.started_at,
            registered_at=at,
            capacity=event.capacity,
            # Instances of the earlier boot stay until their own `instance.deregistered`.
            instances=state.instances if state is not None else {},
        )
    if state is None:
        return None
    if isinstance(event, InstanceRegistered):
        state.instances[event.instance_id] = InstanceState(
            agent_id=event.agent_id,
            agent_name=event.agent_name,
            started_at=event.started_at,
            boot_id=state.boot_id,
            registered_at=at,
        )
    elif isinstance(event, InstanceHealthChanged):
        instance = state.instances.get(event.instance_id)
        if instance is not None:
            instance.health = event.health
    elif isinstance(event, InstanceDeregistered):
        state.instances.pop(event.instance_id, None)
    elif isinstance(event, HostHealthChanged):
        state.health = event.health
    elif isinstance(event, HostDeregistered):
        return None
    return state


def fold(events: list[tuple[object, datetime]]) -> HostState | None:
    state: HostState | None = None
    for event, at in events:
        state = evolve(state, event, at)
    return state


# --- deciders --------------------------------------------------------------------------------


def is_stale(state: HostState | None, beat: Heartbeat) -> bool:
    """A late chunk from a boot before the current one must not re-register the old boot."""
    if state is None or beat.boot_id == state.boot_id:
        return False
    return _utc(beat.started_at) < _utc(state.started_at)


def on_heartbeat(state: HostState | None, beat: Heartbeat) -> list[HostEvent]:
    """The events one heartbeat chunk calls for; each chunk stands on its own."""
    if is_stale(state, beat):
        return []
    events: list[HostEvent] = []
    known: Mapping[str, InstanceState]
    if state is None or state.boot_id != beat.boot_id:
        events.append(
            HostRegistered(
                host_id=beat.host_id,
                boot_id=beat.boot_id,
                hostname=beat.hostname,
                pid=beat.pid,
                started_at=beat.started_at,
                capacity=beat.capacity,
            )
        )
        if state is not None:
            events.extend(
                InstanceDeregistered(instance_id=iid, reason=HOST_RESTARTED)
                for iid, instance in state.instances.items()
                if instance.boot_id != beat.boot_id
            )
        known = (
            {}
            if state is None
            else {i: s for i, s in state.instances.items() if s.boot_id == beat.boot_id}
        )
    else:
        known = state.instances
        if state.health != "healthy":
            events.append(
                HostHealthChanged(health="healthy", previous=state.health, reason="heard from")
            )

    stopped = set(beat.stopped)
    added: set[str] = set()
    for replica in beat.replicas:
        iid = replica.instance_id
        if iid in stopped:
            continue
        failed = replica.state == "failed"
        target: Health = "unhealthy" if failed else "healthy"
        instance = known.get(iid)
        if instance is None:
            if iid in added:
                continue
            added.add(iid)
            events.append(
                InstanceRegistered(
                    instance_id=iid,
                    agent_id=replica.agent_id,
                    agent_name=replica.agent_name,
                    started_at=replica.started_at,
                )
            )
            previous: Health = "healthy"
        elif instance.health == target:
            continue
        else:
            previous = instance.health
        if target != previous:
            reason = (replica.last_error or "replica failed") if failed else "heard from"
            events.append(
                InstanceHealthChanged(
                    instance_id=iid, health=target, previous=previous, reason=reason
                )
            )

    for iid in dict.fromkeys(beat.stopped):
        if iid in known:
            events.append(InstanceDeregistered(instance_id=iid, reason=STOPPED))
    return events


def on_clock(
    state: HostState,
    host_seen: float,
    instances_seen: Mapping[str, float],
    now: float,
    policy: HealthPolicy,
) -> list[HostEvent]:
    """The events a tick of the health clock calls for: silence only ever makes things worse
    here; a heartbeat makes them better.

    Times are seconds on one clock. An instance missing from `instances_seen` counts as heard
    from when its host was.
    """
    events: list[HostEvent] = []
    silent = now - host_seen
    if silent > policy.deregister_host_s:
        events.extend(
            InstanceDeregistered(instance_id=iid, reason=HOST_DEREGISTERED)
            for iid in state.instances
        )
        events.append(HostDeregistered(reason=f"gone for {silent - policy.gone_s:.0f}s"))
        return events
    health = policy.health_for(silent)
    if _RANK[health] > _RANK[state.health]:
        events.append(
            HostHealthChanged(health=health, previous=state.health, reason=_silence(silent))
        )

    unhealthy_s = policy.unhealthy_s
    for iid, instance in state.instances.items():
        quiet = now - instances_seen.get(iid, host_seen)
        if quiet <= unhealthy_s:
            continue
        if quiet > policy.deregister_instance_s:
            if instance.health != "gone":
                events.append(
                    InstanceHealthChanged(
                        instance_id=iid,
                        health="gone",
                        previous=instance.health,
                        reason=_silence(quiet),
                    )
                )
            events.append(InstanceDeregistered(instance_id=iid, reason=GONE))
            continue
        health = policy.health_for(quiet)
        if _RANK[health] > _RANK[instance.health]:
            events.append(
                InstanceHealthChanged(
                    instance_id=iid, health=health, previous=instance.health, reason=_silence(quiet)
                )
            )
    return events


def _silence(seconds: float) -> str:
    return f"no heartbeat for {seconds:.1f}s"


def _utc(moment: datetime) -> datetime:
    # Hosts should send aware times; a naive one is taken as UTC rather than failing the
    # comparison.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
