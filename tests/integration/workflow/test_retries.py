"""Retries, on_error continue and timeouts, with a real agent that fails on purpose."""

from __future__ import annotations

from typing import Any

from cortex.contracts.workflow import ExecutionStarted, StepFailed, StepRetrying
from cortex.kernel.store import open_store
from cortex.workflow.domain import CODEC, execution_stream
from tests.integration.workflow.conftest import Stack, spec, step


def flaky(name: str, attempts: int, key: str) -> dict[str, Any]:
    return spec(
        name,
        [
            {
                "id": "flaky",
                "type": "agent",
                "agent": "wf-worker",
                "input": {"key": key, "fail_first": 2},
                "retry": {"attempts": attempts, "backoff": "100ms", "max_backoff": "150ms"},
            }
        ],
    )


async def events_of(stack: Stack, execution_id: str) -> list[Any]:
    store = await open_store(stack.settings.effective_store, "workflow")
    try:
        return [CODEC.decode(e) for e in await store.read(execution_stream(execution_id))]
    finally:
        await store.close()


async def test_a_step_that_fails_twice_succeeds_on_its_third_attempt(stack: Stack) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(flaky("flaky-three", 3, "k3"))

    view = await stack.run("flaky-three")

    assert view.status == "succeeded", view.error
    flaky_step = step(view, "flaky")
    assert (flaky_step.status, flaky_step.attempts, flaky_step.error) == ("succeeded", 3, None)
    assert flaky_step.output == {"agent": "wf-worker", "got": {"key": "k3", "fail_first": 2}}
    events = await events_of(stack, view.id)
    assert isinstance(events[0], ExecutionStarted)
    shape = [(type(e).__name__, e.attempt, getattr(e, "final", None)) for e in events[1:-1]]
    assert shape == [
        ("StepStarted", 1, None),
        ("StepFailed", 1, False),
        ("StepRetrying", 2, None),
        ("StepStarted", 2, None),
        ("StepFailed", 2, False),
        ("StepRetrying", 3, None),
        ("StepStarted", 3, None),
        ("StepSucceeded", 3, None),
    ]
    delays = [e.delay for e in events if isinstance(e, StepRetrying)]
    assert 0.08 <= delays[0] <= 0.12
    assert 0.12 <= delays[1] <= 0.18
    assert len([c for c in stack.calls() if c["body"].get("key") == "k3"]) == 3


async def test_with_two_attempts_the_execution_fails_naming_the_step_and_the_error(
    stack: Stack,
) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(flaky("flaky-two", 2, "k2"))

    view = await stack.run("flaky-two")

    assert view.status == "failed"
    assert view.error == (
        "step flaky failed after 2 attempts: agent wf-worker failed: RuntimeError: failure 2 of 2"
    )
    flaky_step = step(view, "flaky")
    assert (flaky_step.status, flaky_step.attempts) == ("failed", 2)
    assert flaky_step.error == "agent wf-worker failed: RuntimeError: failure 2 of 2"
    finals = [e.final for e in await events_of(stack, view.id) if isinstance(e, StepFailed)]
    assert finals == [False, True]


async def test_on_error_continue_and_timeouts(stack: Stack) -> None:
    await stack.agent("wf-worker", "wf-worker")
    slow = {
        "id": "slow",
        "type": "agent",
        "agent": "wf-worker",
        "input": {"sleep": 1.5},
        "timeout": "300ms",
    }
    await stack.register(
        spec(
            "goes-on",
            [
                {**slow, "on_error": "continue"},
                {"id": "after", "type": "transform", "output": {"slow": "${steps.slow.output}"}},
            ],
        )
    )
    await stack.register(spec("stops", [slow, {"id": "after", "type": "transform", "output": 1}]))

    goes_on = await stack.run("goes-on")
    assert goes_on.status == "succeeded", goes_on.error
    slow_step = step(goes_on, "slow")
    assert (slow_step.status, slow_step.error, slow_step.output) == (
        "failed",
        "timed out after 0.3s",
        None,
    )
    assert step(goes_on, "after").output == {"slow": None}

    stops = await stack.run("stops")
    assert stops.status == "failed"
    assert stops.error == "step slow failed after 1 attempt: timed out after 0.3s"
    assert [(s.id, s.status) for s in stops.steps] == [("slow", "failed"), ("after", "skipped")]


async def test_a_reference_that_does_not_resolve_fails_the_step_at_once(stack: Stack) -> None:
    await stack.register(
        spec(
            "missing-path",
            [
                {"id": "first", "type": "transform", "output": {"other": 1}},
                {
                    "id": "second",
                    "type": "transform",
                    "output": "${steps.first.output.text}",
                    "retry": {"attempts": 5},
                },
            ],
        )
    )
    view = await stack.run("missing-path")
    assert view.status == "failed"
    assert view.error == (
        "step second failed after 1 attempt: "
        "${steps.first.output.text}: steps.first.output has no key 'text'"
    )


async def test_a_failing_step_in_a_group_cancels_its_siblings(stack: Stack) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(
        spec(
            "group-fails",
            [
                {
                    "parallel": [
                        {
                            "id": "long",
                            "type": "agent",
                            "agent": "wf-worker",
                            "input": {"sleep": 30},
                        },
                        {"id": "bad", "type": "transform", "expression": 'abs(`"x"`)'},
                    ]
                },
                {"id": "never", "type": "transform", "output": 1},
            ],
        )
    )
    # Well before the long step could end by itself: it was cancelled.
    view = await stack.run("group-fails", timeout=15)
    assert view.status == "failed"
    assert view.error is not None
    assert view.error.startswith("step bad failed after 1 attempt")
    assert {s.id: s.status for s in view.steps} == {
        "long": "cancelled",
        "bad": "failed",
        "never": "skipped",
    }
