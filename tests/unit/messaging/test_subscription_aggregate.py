"""An agent's subscriptions: given events, when a command, then events (or a refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.contracts.messaging import SubscriptionAdded, SubscriptionRemoved
from cortex.kernel.errors import Invalid, NotFound
from cortex.messaging import subscription_domain as domain
from cortex.messaging.subscription_domain import Subscribed

A = "a1"


def given(*events: Any) -> Subscribed:
    state = Subscribed()
    for event in events:
        state = domain.evolve(state, event)
    return state


def added(topic: str, source: str = "runtime") -> SubscriptionAdded:
    return SubscriptionAdded(agent_id=A, topic=topic, source=source)  # type: ignore[arg-type]


def removed(topic: str) -> SubscriptionRemoved:
    return SubscriptionRemoved(agent_id=A, topic=topic)


def test_adding_a_topic_subscribes_the_agent() -> None:
    assert domain.add(given(), A, ["orders.created"]) == [added("orders.created")]


def test_adding_a_subscribed_topic_again_changes_nothing() -> None:
    state = given(added("orders"))
    assert domain.add(state, A, ["orders"]) == []
    # whatever the source: a template topic the agent already took at runtime stays as it is
    assert domain.add(state, A, ["orders"], "template") == []


def test_template_topics_come_in_one_decision_without_repeats() -> None:
    state = given(added("b"))
    assert domain.add(state, A, ["a", "b", "c", "a"], "template") == [
        added("a", "template"),
        added("c", "template"),
    ]


def test_removing_unsubscribes_and_a_removed_topic_can_come_back() -> None:
    state = given(added("orders"), added("billing"))
    assert domain.remove(state, A, "orders") == [removed("orders")]
    after = given(added("orders"), added("billing"), removed("orders"))
    assert after.topics == {"billing": "runtime"}
    assert domain.add(after, A, ["orders"]) == [added("orders")]


def test_removing_a_topic_not_subscribed_is_not_found() -> None:
    with pytest.raises(NotFound, match="not subscribed to orders"):
        domain.remove(given(added("billing")), A, "orders")
    with pytest.raises(NotFound):
        domain.remove(given(added("orders"), removed("orders")), A, "orders")


def test_a_purge_removes_every_subscription_and_nothing_when_there_is_none() -> None:
    state = given(added("b"), added("a", "template"))
    assert domain.remove_all(state, A) == [removed("a"), removed("b")]
    assert domain.remove_all(given(), A) == []


def test_the_source_of_each_subscription_is_kept() -> None:
    assert given(added("a", "template"), added("b")).topics == {"a": "template", "b": "runtime"}


@pytest.mark.parametrize("topic", ["orders", "orders.created", "a-b_c.D9", "x.y.z"])
def test_valid_topics(topic: str) -> None:
    assert domain.check_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "orders.", ".orders", "a..b", "a.*", "a.>", "a b", "é"])
def test_invalid_topics_name_the_field(topic: str) -> None:
    with pytest.raises(Invalid) as caught:
        domain.check_topic(topic)
    assert [v.field for v in caught.value.violations] == ["$.topic"]


def test_agent_ids_must_be_one_subject_token() -> None:
    assert domain.check_agent_id("0192-abc_d") == "0192-abc_d"
    for bad in ("a.b", "a*", "", "a b"):
        with pytest.raises(Invalid) as caught:
            domain.check_agent_id(bad)
        assert caught.value.violations[0].field == "$.agent_id"


def test_streams_are_per_agent() -> None:
    assert domain.stream_id("a1") == "subscriptions-a1"
    assert domain.agent_of("subscriptions-a1") == "a1"
    assert domain.agent_of("agent-a1") is None
