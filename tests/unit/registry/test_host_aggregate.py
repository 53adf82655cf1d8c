"""The Host aggregate: given events, when a heartbeat or a clock tick, then events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cortex.contracts.registry import (
    Heartbeat,
    HostDeregistered,
    HostHealthChanged,
    HostRegistered,
    InstanceDeregistered,
    InstanceHealthChanged,
    InstanceRegistered,
    ReplicaReport,
)
from cortex.registry.domain import (
    HealthPolicy,
    HostEvent,
    HostState,
    evolve,
    fold,
    on_clock,
    on_heartbeat,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = HealthPolicy(interval=2.0, unhealthy_after=3, gone_after=8, forget_hosts_after=600.0)


def replica(iid: str, *, agent: str = "a1", **fields: Any) -> ReplicaReport:
    values: dict[str, Any] = {
        "instance_id": iid,
        "agent_id": agent,
        "agent_name": f"name-{agent}",
        "state": "running",
        "started_at": T0,
    }
    values.update(fields)
    return ReplicaReport(**values)


def beat(*replicas: ReplicaReport, **fields: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "host_id": "h1",
        "boot_id": "b1",
        "hostname": "box",
        "pid": 42,
        "started_at": T0,
        "sent_at": T0,
        "interval": 2.0,
        "cpu_percent": 1.0,
        "rss_bytes": 1000,
        "replicas": list(replicas),
    }
    values.update(fields)
    return Heartbeat(**values)


def registered(boot: str = "b1", started_at: datetime = T0) -> HostRegistered:
    return HostRegistered(host_id="h1", boot_id=boot, hostname="box", pid=42, started_at=started_at)


def instance(iid: str, agent: str = "a1") -> InstanceRegistered:
    return InstanceRegistered(
        instance_id=iid, agent_id=agent, agent_name=f"name-{agent}", started_at=T0
    )


def given(*events: HostEvent) -> HostState | None:
    return fold([(e, T0) for e in events])


def known(*events: HostEvent) -> HostState:
    state = given(*events)
    assert state is not None
    return state


# --- heartbeats ------------------------------------------------------------------------------


def test_an_unknown_host_registers_with_its_replicas() -> None:
    then = on_heartbeat(given(), beat(replica("i1"), replica("i2", agent="a2")))
    assert then == [registered(), instance("i1"), instance("i2", "a2")]


def test_a_heartbeat_that_changes_nothing_decides_nothing() -> None:
    state = given(registered(), instance("i1"), instance("i2"))
    assert on_heartbeat(state, beat(replica("i1"), replica("i2"))) == []
    # A chunk listing only some replicas says nothing about the others.
    assert on_heartbeat(state, beat(replica("i2"), chunk=1, chunks=2)) == []


def test_only_replicas_not_known_yet_are_registered() -> None:
    state = given(registered(), instance("i1"))
    assert on_heartbeat(state, beat(replica("i1"), replica("i2"), replica("i2"))) == [
        instance("i2")
    ]


def test_a_failed_replica_is_unhealthy_with_its_error() -> None:
    state = given(registered(), instance("i1"))
    failed = replica("i1", state="failed", last_error="boom")
    then = on_heartbeat(state, beat(failed))
    assert then == [
        InstanceHealthChanged(
            instance_id="i1", health="unhealthy", previous="healthy", reason="boom"
        )
    ]
    # Reported failed again: already unhealthy, nothing new.
    assert on_heartbeat(known(registered(), instance("i1"), *then), beat(failed)) == []


def test_a_new_replica_that_already_failed_registers_unhealthy() -> None:
    then = on_heartbeat(given(registered()), beat(replica("i1", state="failed")))
    assert then == [
        instance("i1"),
        InstanceHealthChanged(
            instance_id="i1", health="unhealthy", previous="healthy", reason="replica failed"
        ),
    ]


def test_a_replica_heard_from_again_is_healthy_again() -> None:
    for previous in ("unhealthy", "gone"):
        state = given(
            registered(),
            instance("i1"),
            InstanceHealthChanged(
                instance_id="i1", health=previous, previous="healthy", reason="x"
            ),
        )
        assert on_heartbeat(state, beat(replica("i1"))) == [
            InstanceHealthChanged(
                instance_id="i1", health="healthy", previous=previous, reason="heard from"
            )
        ]


def test_stopped_replicas_are_deregistered_once() -> None:
    state = given(registered(), instance("i1"), instance("i2"))
    when = beat(replica("i2"), stopped=["i1", "i1", "unknown"])
    assert on_heartbeat(state, when) == [InstanceDeregistered(instance_id="i1", reason="stopped")]
    after = known(registered(), instance("i1"), instance("i2"), *on_heartbeat(state, when))
    assert on_heartbeat(after, when) == []  # `stopped` is repeated for a few beats


def test_a_replica_listed_and_stopped_is_not_registered() -> None:
    assert on_heartbeat(given(registered()), beat(replica("i1"), stopped=["i1"])) == []


def test_a_new_boot_re_registers_the_host_and_ends_the_earlier_boots_instances() -> None:
    state = given(registered(), instance("i1"), instance("i2"))
    later = T0 + timedelta(minutes=1)
    then = on_heartbeat(state, beat(replica("i3"), boot_id="b2", started_at=later))
    assert then == [
        registered("b2", later),
        InstanceDeregistered(instance_id="i1", reason="host restarted"),
        InstanceDeregistered(instance_id="i2", reason="host restarted"),
        instance("i3"),
    ]
    after = known(registered(), instance("i1"), instance("i2"), *then)
    assert after.boot_id == "b2"
    assert list(after.instances) == ["i3"]
    assert after.instances["i3"].boot_id == "b2"


def test_a_late_chunk_of_an_earlier_boot_is_ignored() -> None:
    later = T0 + timedelta(minutes=1)
    state = given(registered("b2", later), instance("i3"))
    assert on_heartbeat(state, beat(replica("i1"), boot_id="b1", started_at=T0)) == []


def test_a_silent_host_heard_from_again_is_healthy_again() -> None:
    state = given(
        registered(), HostHealthChanged(health="gone", previous="healthy", reason="silent")
    )
    assert on_heartbeat(state, beat()) == [
        HostHealthChanged(health="healthy", previous="gone", reason="heard from")
    ]


def test_a_deregistered_host_registers_again() -> None:
    state = given(registered(), instance("i1"), HostDeregistered(reason="gone"))
    assert state is None
    assert on_heartbeat(state, beat(replica("i1"))) == [registered(), instance("i1")]


# --- the health clock ------------------------------------------------------------------------

NOW = 10_000.0


def test_a_fresh_host_ticks_by_without_events() -> None:
    state = known(registered(), instance("i1"))
    assert on_clock(state, NOW - 1, {"i1": NOW - 1}, NOW, POLICY) == []


def test_silence_makes_a_host_and_its_instances_unhealthy_then_gone() -> None:
    state = known(registered(), instance("i1"))
    silent = NOW - POLICY.unhealthy_s - 0.1
    then = on_clock(state, silent, {"i1": silent}, NOW, POLICY)
    reason = f"no heartbeat for {POLICY.unhealthy_s + 0.1:.1f}s"
    assert then == [
        HostHealthChanged(health="unhealthy", previous="healthy", reason=reason),
        InstanceHealthChanged(
            instance_id="i1", health="unhealthy", previous="healthy", reason=reason
        ),
    ]
    state = known(registered(), instance("i1"), *then)
    assert on_clock(state, silent, {"i1": silent}, NOW, POLICY) == []  # no repeats

    silent = NOW - POLICY.gone_s - 0.1
    reason = f"no heartbeat for {POLICY.gone_s + 0.1:.1f}s"
    assert on_clock(state, silent, {"i1": silent}, NOW, POLICY) == [
        HostHealthChanged(health="gone", previous="unhealthy", reason=reason),
        InstanceHealthChanged(instance_id="i1", health="gone", previous="unhealthy", reason=reason),
    ]


def test_an_instance_no_chunk_lists_goes_unhealthy_while_its_host_is_fine() -> None:
    state = known(registered(), instance("i1"), instance("i2"))
    quiet = NOW - POLICY.unhealthy_s - 1
    then = on_clock(state, NOW, {"i1": NOW, "i2": quiet}, NOW, POLICY)
    assert [(type(e), getattr(e, "instance_id", None)) for e in then] == [
        (InstanceHealthChanged, "i2")
    ]


def test_a_gone_instance_is_deregistered_after_a_further_gone_after_intervals() -> None:
    gone = InstanceHealthChanged(instance_id="i1", health="gone", previous="healthy", reason="x")
    state = known(registered(), instance("i1"), gone)
    almost = NOW - 2 * POLICY.gone_s + 0.1
    assert on_clock(state, NOW, {"i1": almost}, NOW, POLICY) == []
    past = NOW - 2 * POLICY.gone_s - 0.1
    assert on_clock(state, NOW, {"i1": past}, NOW, POLICY) == [
        InstanceDeregistered(instance_id="i1", reason="gone")
    ]
    # A tick that comes late still says the instance was gone before it was deregistered.
    fresh = known(registered(), instance("i1"))
    then = on_clock(fresh, NOW, {"i1": past}, NOW, POLICY)
    assert [type(e) for e in then] == [InstanceHealthChanged, InstanceDeregistered]


def test_a_gone_host_is_deregistered_after_ten_minutes() -> None:
    state = known(
        registered(),
        instance("i1"),
        HostHealthChanged(health="gone", previous="healthy", reason="x"),
    )
    assert POLICY.deregister_host_s == POLICY.gone_s + 600
    silent = NOW - POLICY.gone_s - 599
    assert not any(
        isinstance(e, HostDeregistered) for e in on_clock(state, silent, {}, NOW, POLICY)
    )
    silent = NOW - POLICY.gone_s - 601
    then = on_clock(state, silent, {"i1": silent}, NOW, POLICY)
    assert then == [
        InstanceDeregistered(instance_id="i1", reason="host deregistered"),
        HostDeregistered(reason="gone for 601s"),
    ]
    assert given(registered(), instance("i1"), *then) is None


def test_the_clock_never_makes_health_better() -> None:
    failed = InstanceHealthChanged(
        instance_id="i1", health="unhealthy", previous="healthy", reason="boom"
    )
    state = known(registered(), instance("i1"), failed)
    assert on_clock(state, NOW, {"i1": NOW}, NOW, POLICY) == []


def test_an_instance_the_clock_has_no_time_for_counts_from_its_host() -> None:
    state = known(registered(), instance("i1"))
    silent = NOW - POLICY.unhealthy_s - 1
    assert len(on_clock(state, silent, {}, NOW, POLICY)) == 2


# --- evolve ----------------------------------------------------------------------------------


def test_evolve_keeps_registration_times_and_boots() -> None:
    later = T0 + timedelta(seconds=5)
    state = evolve(None, registered(), T0)
    state = evolve(state, instance("i1"), later)
    assert state is not None
    assert state.registered_at == T0
    assert state.instances["i1"].registered_at == later
    assert state.instances["i1"].boot_id == "b1"
    # Events about instances a host does not have are ignored, not errors.
    assert evolve(state, InstanceDeregistered(instance_id="x", reason="stopped"), T0) is state
    assert evolve(None, instance("i1"), T0) is None


def test_a_thousand_new_replicas_are_one_decision() -> None:
    then = on_heartbeat(given(registered()), beat(*(replica(f"i{n}") for n in range(1000))))
    assert len(then) == 1000
    assert all(isinstance(e, InstanceRegistered) for e in then)
