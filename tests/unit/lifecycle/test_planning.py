"""How many replicas to start and which to stop, from what runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cortex.lifecycle.drivers.port import ObservedInstance
from cortex.lifecycle.planning import plan_agent


def inst(
    i: str, health: str = "healthy", state: str = "running", started_at: datetime | None = None
) -> ObservedInstance:
    return ObservedInstance(
        id=i,
        agent_id="a",
        host_id="h",
        health=health,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        started_at=started_at,
    )


def test_missing_replicas_are_started_counting_pending_ones() -> None:
    plan = plan_agent(
        status="deploying", replicas=3, instances=[inst("a-1")], pending=1, stopping=()
    )
    assert plan.start == 1
    assert not plan.settled


def test_extra_replicas_stop_unhealthy_ones_first() -> None:
    plan = plan_agent(
        status="scaling",
        replicas=1,
        instances=[inst("a-1"), inst("a-2", health="unhealthy"), inst("a-3")],
        pending=0,
        stopping=(),
    )
    assert [i.id for i in plan.stop] == ["a-2", "a-1"]
    assert plan.present == 1


def test_settled_and_ready_when_exactly_the_desired_replicas_run() -> None:
    plan = plan_agent(
        status="deploying", replicas=2, instances=[inst("a-1"), inst("a-2")], pending=0, stopping=()
    )
    assert (plan.start, plan.stop, plan.ready, plan.present, plan.settled) == (0, [], 2, 2, True)


def test_replicas_on_their_way_out_neither_count_nor_settle() -> None:
    plan = plan_agent(
        status="running",
        replicas=1,
        instances=[inst("a-1"), inst("a-2", state="stopping")],
        pending=0,
        stopping={"a-9"},
    )
    assert plan.present == 1
    assert not plan.settled
    plan = plan_agent(
        status="running",
        replicas=1,
        instances=[inst("a-1"), inst("a-2")],
        pending=0,
        stopping={"a-2"},
    )
    assert plan.start == 0
    assert plan.stop == []
    assert not plan.settled


def test_terminating_and_created_agents_want_nothing_running() -> None:
    plan = plan_agent(
        status="terminating", replicas=3, instances=[inst("a-1")], pending=0, stopping=()
    )
    assert [i.id for i in plan.stop] == ["a-1"]
    assert plan.start == 0
    plan = plan_agent(status="created", replicas=3, instances=[], pending=0, stopping=())
    assert (plan.start, plan.present, plan.settled) == (0, 0, True)


def test_replicas_started_before_a_config_change_are_replaced() -> None:

    changed = datetime(2026, 1, 1, tzinfo=UTC)
    old = inst("a-1", started_at=changed - timedelta(seconds=5))
    new = inst("a-2", started_at=changed + timedelta(seconds=5))
    plan = plan_agent(
        status="running",
        replicas=2,
        instances=[old, new],
        pending=0,
        stopping=(),
        config_changed_at=changed,
    )
    assert [i.id for i in plan.stop] == ["a-1"]
    assert plan.start == 1
    assert plan.present == 1
    assert not plan.settled


def test_a_replica_started_with_the_old_config_is_replaced_though_it_registered_after() -> None:
    """A config change that lands while a start is under way: the replica registers after
    the change, but runs the config it was started with."""
    changed = datetime(2026, 1, 1, tzinfo=UTC)
    late = inst("a-1", started_at=changed + timedelta(seconds=1))
    fresh = inst("a-2", started_at=changed + timedelta(seconds=1))
    plan = plan_agent(
        status="running",
        replicas=2,
        instances=[late, fresh],
        pending=0,
        stopping=(),
        config_changed_at=changed,
        started_with={"a-1": None, "a-2": changed},
    )
    assert [i.id for i in plan.stop] == ["a-1"]
    assert plan.start == 1
    # Without what it was started with, the registration time is all there is to go by.
    unknown = plan_agent(
        status="running",
        replicas=2,
        instances=[late, fresh],
        pending=0,
        stopping=(),
        config_changed_at=changed,
    )
    assert unknown.stop == []
