"""Agent state as pure functions: given events, when a put, patch or delete, then events (or the
error that refuses it)."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.contracts.state import (
    STATE_LIMIT,
    PatchState,
    PutState,
    StateDeleted,
    StatePatched,
    StateView,
    StateWritten,
)
from cortex.kernel.errors import Invalid, PreconditionFailed, TooLarge
from cortex.registry.state_domain import (
    PURGED,
    Doc,
    StateEvent,
    agent_of,
    delete,
    evolve,
    patch,
    put,
    stream_id,
    view,
)

A = "agent-1"
NOW = 5_000


def given(*events: StateEvent) -> Doc:
    doc = Doc()
    for event in events:
        doc = evolve(doc, event)
    return doc


def written(version: int, value: Any, at: int, writer: str = "w1") -> StateWritten:
    return StateWritten(agent_id=A, value=value, version=version, written_at=at, writer=writer)


def put_cmd(value: Any, **fields: Any) -> PutState:
    return PutState(agent_id=A, value=value, **{"writer": "w1", **fields})


def patch_cmd(change: dict[str, Any], **fields: Any) -> PatchState:
    return PatchState(agent_id=A, patch=change, **{"writer": "w1", **fields})


# --- unconditional puts ----------------------------------------------------------------------


def test_a_first_put_is_version_1_with_its_own_stamp() -> None:
    assert put(given(), put_cmd({"n": 1}, written_at=100), NOW) == [written(1, {"n": 1}, 100)]


def test_a_put_without_a_clock_is_stamped_with_the_registry_clock() -> None:
    assert put(given(), put_cmd("x"), NOW) == [written(1, "x", NOW)]


def test_a_newer_put_replaces_the_document() -> None:
    doc = given(written(1, "old", 100))
    assert put(doc, put_cmd("new", written_at=101, writer="w0"), NOW) == [
        written(2, "new", 101, "w0")
    ]


def test_an_older_or_equal_put_is_not_applied() -> None:
    doc = given(written(1, "kept", 100, "w2"))
    assert put(doc, put_cmd("older", written_at=99, writer="w9"), NOW) == []
    assert put(doc, put_cmd("same stamp", written_at=100, writer="w2"), NOW) == []
    # Same clock reading: the writer id breaks the tie.
    assert put(doc, put_cmd("w1 < w2", written_at=100, writer="w1"), NOW) == []
    assert put(doc, put_cmd("w3 > w2", written_at=100, writer="w3"), NOW) == [
        written(2, "w3 > w2", 100, "w3")
    ]


# --- conditional puts ------------------------------------------------------------------------


def test_a_conditional_put_at_the_current_version_applies_whatever_its_clock() -> None:
    doc = given(written(1, "a", 100, "w2"))
    then = put(doc, put_cmd("b", written_at=50, expected_version=1), NOW)
    # Its own stamp is older; it gets one just past the current, so stamps only grow.
    assert then == [written(2, "b", 101, "w1")]
    after = given(written(1, "a", 100, "w2"), *then)
    assert put(after, put_cmd("late", written_at=100, writer="w3"), NOW) == []


def test_a_conditional_put_with_a_newer_clock_keeps_its_own_stamp() -> None:
    doc = given(written(1, "a", 100))
    assert put(doc, put_cmd("b", written_at=500, expected_version=1), NOW) == [written(2, "b", 500)]


def test_expected_version_0_means_never_written() -> None:
    assert put(given(), put_cmd("first", expected_version=0), NOW) == [written(1, "first", NOW)]
    with pytest.raises(PreconditionFailed):
        put(given(written(1, "a", 1)), put_cmd("b", expected_version=0), NOW)


def test_a_conditional_put_at_another_version_fails_with_the_current_version() -> None:
    doc = given(written(1, "a", 100), written(2, "b", 200))
    with pytest.raises(PreconditionFailed) as caught:
        put(doc, put_cmd("c", expected_version=1), NOW)
    assert caught.value.details["current_version"] == 2
    assert "version 2" in caught.value.message


# --- patches ---------------------------------------------------------------------------------


def test_a_patch_merges_and_gets_a_stamp_past_the_current_one() -> None:
    doc = given(written(1, {"a": 1, "b": {"c": 2}}, 100, "w2"))
    change = {"b": {"c": None, "d": 3}, "e": 4}
    then = patch(doc, patch_cmd(change, written_at=10), NOW)
    assert then == [StatePatched(agent_id=A, patch=change, version=2, written_at=101, writer="w1")]
    assert given(written(1, {"a": 1, "b": {"c": 2}}, 100, "w2"), *then) == Doc(
        version=2, value={"a": 1, "b": {"d": 3}, "e": 4}, written_at=101, writer="w1"
    )


def test_a_patch_on_a_document_that_is_not_an_object_starts_from_an_empty_one() -> None:
    doc = given(written(1, [1, 2], 100))
    then = patch(doc, patch_cmd({"a": 1}, written_at=200), NOW)
    assert given(written(1, [1, 2], 100), *then).value == {"a": 1}
    assert given(*patch(given(), patch_cmd({"x": None, "y": 1}), NOW)).value == {"y": 1}


def test_a_patch_with_an_expected_version_checks_it() -> None:
    doc = given(written(1, {}, 100))
    assert len(patch(doc, patch_cmd({"a": 1}, expected_version=1), NOW)) == 1
    with pytest.raises(PreconditionFailed) as caught:
        patch(doc, patch_cmd({"a": 1}, expected_version=3), NOW)
    assert caught.value.details["current_version"] == 1


# --- refusals --------------------------------------------------------------------------------


def test_an_empty_writer_is_invalid() -> None:
    with pytest.raises(Invalid) as caught:
        put(given(), put_cmd(1, writer=""), NOW)
    assert [v.field for v in caught.value.violations] == ["$.writer"]
    with pytest.raises(Invalid) as caught:
        patch(given(), patch_cmd({}, writer=""), NOW)
    assert [v.field for v in caught.value.violations] == ["$.writer"]


def test_a_document_over_the_limit_is_too_large() -> None:
    big = "x" * STATE_LIMIT  # plus its two quotes
    with pytest.raises(TooLarge) as caught:
        put(given(), put_cmd(big), NOW)
    assert str(STATE_LIMIT + 2) in caught.value.message
    assert str(STATE_LIMIT) in caught.value.message
    assert put(given(), put_cmd("x" * (STATE_LIMIT - 2)), NOW) != []

    # A patch is measured by the document it makes.
    doc = given(written(1, {"a": "x" * (STATE_LIMIT // 2)}, 1))
    with pytest.raises(TooLarge):
        patch(doc, patch_cmd({"b": "y" * (STATE_LIMIT // 2)}), NOW)


def test_integers_beyond_64_bits_and_negative_clocks_are_invalid() -> None:
    with pytest.raises(Invalid):
        put(given(), put_cmd({"n": 2**64}), NOW)
    with pytest.raises(Invalid):
        patch(given(), patch_cmd({"n": [-(2**63) - 1]}), NOW)
    assert put(given(), put_cmd({"n": 2**64 - 1, "m": -(2**63)}), NOW) != []
    with pytest.raises(Invalid) as caught:
        put(given(), put_cmd(1, written_at=-1), NOW)
    assert [v.field for v in caught.value.violations] == ["$.written_at"]


# --- deletion --------------------------------------------------------------------------------


def test_deleting_returns_to_version_0_but_keeps_the_stamp() -> None:
    history = [written(1, "a", 100), written(2, "b", 200, "w5")]
    then = delete(given(*history), A, PURGED)
    assert then == [StateDeleted(agent_id=A, reason=PURGED)]
    doc = given(*history, *then)
    assert doc == Doc(version=0, value=None, written_at=200, writer="w5")
    assert view(A, doc) == StateView(agent_id=A, version=0)
    # A late write from before the purge does not bring the state back; a newer one does.
    assert put(doc, put_cmd("late", written_at=150), NOW) == []
    assert put(doc, put_cmd("new", written_at=300), NOW) == [written(1, "new", 300)]
    assert put(doc, put_cmd("cas", written_at=1, expected_version=0), NOW) == [
        written(1, "cas", 201)
    ]


def test_nothing_to_delete_at_version_0() -> None:
    assert delete(given(), A, PURGED) == []
    assert delete(given(written(1, "a", 1), StateDeleted(agent_id=A, reason="x")), A, "y") == []


def test_evolve_ignores_what_it_does_not_know_and_streams_are_named_by_agent() -> None:
    doc = given(written(1, "a", 1))
    assert evolve(doc, object()) is doc
    assert stream_id("a1") == "state-a1"
    assert agent_of("state-a1") == "a1"
    assert agent_of("host-a1") is None
