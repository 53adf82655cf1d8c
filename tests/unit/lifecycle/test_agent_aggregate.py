"""The agent aggregate: given events, when a command, then events (or a refusal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex.contracts.lifecycle import (
    AgentCreated,
    AgentDeployRequested,
    AgentNameClaimed,
    AgentPurged,
    AgentScaled,
    AgentStatusChanged,
    AgentTerminated,
    AgentTerminateRequested,
    AgentUpdated,
    TemplateRegistered,
    TemplateSpec,
)
from cortex.kernel.errors import Conflict, NotFound
from cortex.lifecycle import domain
from cortex.lifecycle.domain import AgentState

CREATED = AgentCreated(
    agent_id="a1", name="worker", template="echo", template_version="1", config={"k": 1}, replicas=2
)


def given(*events: Any) -> AgentState:
    state = AgentState()
    for event in events:
        state = domain.evolve_agent(state, event)
    return state


def status(to: str, previous: str, reason: str | None = None) -> AgentStatusChanged:
    return AgentStatusChanged(status=to, previous=previous, reason=reason)  # type: ignore[arg-type]


DEPLOYING = (CREATED, AgentDeployRequested(replicas=2), status("deploying", "created"))
RUNNING = (*DEPLOYING, status("running", "deploying"))


def test_create_and_deploy_in_one_step() -> None:
    assert domain.create_agent(CREATED, deploy=True) == list(DEPLOYING)
    assert domain.create_agent(CREATED, deploy=False) == [CREATED]


def test_deploy_moves_a_created_or_terminated_agent_to_deploying() -> None:
    assert domain.deploy_agent(given(CREATED), None) == [
        AgentDeployRequested(replicas=2),
        status("deploying", "created"),
    ]
    terminated = given(
        *RUNNING,
        AgentTerminateRequested(grace=5),
        status("terminating", "running"),
        AgentTerminated(),
        status("terminated", "terminating"),
    )
    assert domain.deploy_agent(terminated, 4) == [
        AgentDeployRequested(replicas=4),
        status("deploying", "terminated"),
    ]


@pytest.mark.parametrize("history", [DEPLOYING, RUNNING])
def test_deploying_a_deployed_agent_is_a_conflict(history: tuple[Any, ...]) -> None:
    with pytest.raises(Conflict, match="scale it instead"):
        domain.deploy_agent(given(*history), None)


def test_scaling_a_running_agent_goes_through_scaling() -> None:
    assert domain.scale_agent(given(*RUNNING), 5) == [
        AgentScaled(replicas=5, previous=2),
        status("scaling", "running"),
    ]
    assert domain.scale_agent(given(*RUNNING), 2) == []
    assert domain.scale_agent(given(CREATED), 0) == [AgentScaled(replicas=0, previous=2)]


def test_scaling_a_terminating_agent_is_refused() -> None:
    terminating = given(
        *RUNNING, AgentTerminateRequested(grace=5), status("terminating", "running")
    )
    with pytest.raises(Conflict, match="terminating"):
        domain.scale_agent(terminating, 3)


def test_terminate_then_purge() -> None:
    running = given(*RUNNING)
    assert domain.terminate_agent(running, 7.0, False) == [
        AgentTerminateRequested(grace=7.0),
        status("terminating", "running"),
    ]
    terminating = given(
        *RUNNING, AgentTerminateRequested(grace=7.0), status("terminating", "running")
    )
    assert domain.terminate_agent(terminating, 7.0, False) == []
    assert domain.terminate_agent(terminating, 7.0, True) == [
        AgentTerminateRequested(grace=7.0, purge=True)
    ]
    terminated = given(*RUNNING, AgentTerminated(), status("terminated", "running"))
    assert domain.terminate_agent(terminated, 1.0, True) == [AgentPurged()]
    with pytest.raises(Conflict, match="terminated already"):
        domain.terminate_agent(terminated, 1.0, False)


def test_update_changes_only_what_differs() -> None:
    state = given(CREATED)
    assert domain.update_agent(state, {"k": 1}, None) == []
    assert domain.update_agent(state, {"k": 2}, {"team": "a"}) == [
        AgentUpdated(config={"k": 2}, labels={"team": "a"})
    ]


def test_a_purged_agent_is_gone() -> None:
    purged = given(*RUNNING, AgentTerminated(), status("terminated", "running"), AgentPurged())
    with pytest.raises(NotFound):
        domain.must_exist(purged, "worker")


def test_observations_move_the_status_along() -> None:
    deploying = given(*DEPLOYING)
    assert domain.observed(deploying, ready=1, present=2, settled=True, failure=None) == []
    assert domain.observed(deploying, ready=2, present=2, settled=False, failure=None) == []
    assert domain.observed(deploying, ready=2, present=2, settled=True, failure=None) == [
        status("running", "deploying")
    ]
    assert domain.observed(
        deploying, ready=0, present=0, settled=True, failure="cannot import x"
    ) == [status("failed", "deploying", "cannot import x")]
    terminating = given(
        *RUNNING, AgentTerminateRequested(grace=1, purge=True), status("terminating", "running")
    )
    assert domain.observed(terminating, ready=0, present=1, settled=True, failure=None) == []
    assert domain.observed(terminating, ready=0, present=0, settled=True, failure=None) == [
        AgentTerminated(),
        status("terminated", "terminating"),
        AgentPurged(),
    ]


def test_template_versions_are_immutable() -> None:
    spec = TemplateSpec(name="t", version="1", handler="a.b:C")
    state = domain.evolve_template(domain.TemplateState(), TemplateRegistered(spec=spec))
    assert domain.register_template(state, spec) == []
    with pytest.raises(Conflict, match="new version"):
        domain.register_template(state, TemplateSpec(name="t", version="1", handler="a.b:D"))
    assert (
        domain.register_template(state, TemplateSpec(name="t", version="2", handler="a.b:D")) != []
    )


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_name_is_free_unless_a_living_agent_holds_it() -> None:
    held = domain.NameState(holder="a1")
    with pytest.raises(Conflict, match="exists already"):
        domain.claim_name(held, "worker", "a2", holder_exists=True, now=NOW)
    assert domain.claim_name(held, "worker", "a2", holder_exists=False, now=NOW) == [
        AgentNameClaimed(name="worker", agent_id="a2", claimed_at=NOW)
    ]


def test_a_claim_holds_while_its_create_is_under_way_and_not_for_ever() -> None:
    claimed = domain.NameState(holder="a1", claimed_at=NOW)
    not_yet = AgentState()  # the holder's agent.created is not appended yet
    assert domain.holds_name(claimed, not_yet, NOW + timedelta(seconds=1))
    assert not domain.holds_name(claimed, not_yet, NOW + timedelta(minutes=5))
    created = AgentState(exists=True, id="a1")
    assert domain.holds_name(claimed, created, NOW + timedelta(days=9))
    purged = AgentState(exists=True, id="a1", purged=True)
    assert not domain.holds_name(claimed, purged, NOW)
    assert not domain.holds_name(domain.NameState(), not_yet, NOW)
    # A claim from before claims were timed, whose agent never came: left behind long ago.
    assert not domain.holds_name(domain.NameState(holder="a1"), not_yet, NOW)


def test_pools_are_created_once_and_deleted_only_when_empty() -> None:
    from cortex.contracts.pools import PoolCreated, PoolDeleted, PoolSpec

    none = domain.PoolState()
    assert domain.create_pool(none, PoolSpec(name="ml")) == [PoolCreated(name="ml")]
    exists = domain.evolve_pool(none, PoolCreated(name="ml"))
    with pytest.raises(Conflict, match="exists already"):
        domain.create_pool(exists, PoolSpec(name="ml"))
    with pytest.raises(Conflict, match="still has 2 agent"):
        domain.delete_pool(exists, "ml", members=2)
    assert domain.delete_pool(exists, "ml", members=0) == [PoolDeleted(name="ml")]
    with pytest.raises(NotFound):
        domain.delete_pool(none, "ml", members=0)


def test_moving_an_agent_between_pools() -> None:
    state = given(CREATED)
    assert domain.update_agent(state, None, None, "ml") == [AgentUpdated(pool="ml")]
    in_ml = given(CREATED, AgentUpdated(pool="ml"))
    assert in_ml.pool == "ml"
    assert domain.update_agent(in_ml, None, None, "ml") == []
    assert domain.update_agent(in_ml, None, None, "") == [AgentUpdated(pool="")]
    assert given(CREATED, AgentUpdated(pool="ml"), AgentUpdated(pool="")).pool is None
