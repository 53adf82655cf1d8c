"""Cancel, and executions that outlive the workflow runtime that started them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TypeVar

import pytest

from cortex.contracts.workflow import ExecutionPage, ExecutionRef, ExecutionView, ListExecutions
from cortex.kernel.errors import Conflict, NotFound
from cortex.kernel.store import open_store
from cortex.kernel.waiting import cancel_and_wait
from cortex.workflow import timeline
from cortex.workflow.domain import CODEC, execution_stream
from tests.integration.workflow.conftest import Stack, spec, started_workflow, step
from tests.support.polling import settled

T = TypeVar("T")

FANOUT_SLOW = spec(
    "slow-fanout",
    [
        {"id": "first", "type": "agent", "agent": "wf-worker", "input": {"step": "first"}},
        {
            "parallel": [
                {"id": "a", "type": "agent", "agent": "wf-worker", "input": {"step": "a"}},
                {
                    "id": "b",
                    "type": "agent",
                    "agent": "wf-worker",
                    "input": {"step": "b", "sleep": 1.5},
                },
                {
                    "id": "c",
                    "type": "agent",
                    "agent": "wf-worker",
                    "input": {"step": "c", "sleep": 1.5},
                },
            ]
        },
        {"id": "last", "type": "agent", "agent": "wf-worker", "input": {"step": "last"}},
    ],
)


async def test_cancel_stops_the_running_step_and_only_once(stack: Stack) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(
        spec(
            "long",
            [
                {"id": "wait", "type": "agent", "agent": "wf-worker", "input": {"sleep": 2}},
                {"id": "after", "type": "transform", "output": 1},
            ],
        )
    )
    started = await stack.execute("long")
    await settled(lambda: stack.get(started.id), lambda v: step(v, "wait").status == "running")

    cancelled = await stack.call("execution.cancel", ExecutionRef(started.id), ExecutionView)

    assert cancelled.status == "cancelled"
    assert cancelled.finished_at is not None
    assert [(s.id, s.status) for s in cancelled.steps] == [
        ("wait", "cancelled"),
        ("after", "skipped"),
    ]
    with pytest.raises(Conflict, match="has finished"):
        await stack.call("execution.cancel", ExecutionRef(started.id), ExecutionView)
    with pytest.raises(NotFound):
        await stack.call("execution.cancel", ExecutionRef("nope"), ExecutionView)
    # The runner is gone at once, and wrote nothing after the cancel.
    assert stack.service is not None
    supervisor = stack.service.supervisor
    await settled(lambda: _value(supervisor.runners), lambda r: not r, timeout=10)
    await asyncio.sleep(0.3)
    assert (await stack.get(started.id)).version == cancelled.version
    page = await stack.call("execution.list", ListExecutions(status="cancelled"), ExecutionPage)
    assert [e.id for e in page.items] == [started.id]


async def test_a_restart_in_the_middle_of_a_group_resumes_without_running_done_steps_again(
    stack: Stack,
) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(FANOUT_SLOW)
    started = await stack.execute("slow-fanout")
    await settled(
        lambda: stack.get(started.id),
        lambda v: (
            step(v, "a").status == "succeeded"
            and step(v, "b").status == "running"
            and step(v, "c").status == "running"
        ),
    )

    await stack.workflow.stop()
    stopped = await _stored_view(stack, started.id)
    assert stopped.status == "running"
    await stack.start_workflow()

    view = await stack.finished(started.id, timeout=15)
    assert view.status == "succeeded", view.error
    assert [(s.id, s.status) for s in view.steps] == [
        ("first", "succeeded"),
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("c", "succeeded"),
        ("last", "succeeded"),
    ]
    # Cut short, b and c ran again as their second attempt; first and a were not run again.
    assert (step(view, "b").attempts, step(view, "c").attempts) == (2, 2)
    calls = Counter(c["body"]["step"] for c in stack.calls())
    assert (calls["first"], calls["a"], calls["last"]) == (1, 1, 1)
    assert calls["b"] == calls["c"] == 2


async def test_an_execution_runs_once_across_replicas_and_a_lapsed_lease_is_taken_over(
    stack: Stack,
) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(FANOUT_SLOW)
    # Two replicas on one store, with short leases and quick scans.
    await stack.workflow.stop()
    first = await stack.start_workflow(lease_ttl=1.5, scan_interval=0.3)
    second = await started_workflow(stack.settings, stack.client, lease_ttl=1.5, scan_interval=0.3)
    try:
        started = [await stack.execute("slow-fanout") for _ in range(3)]
        views = [await stack.finished(s.id, timeout=15) for s in started]
        assert [v.status for v in views] == ["succeeded"] * 3
        calls = Counter(c["body"]["step"] for c in stack.calls())
        assert calls == {"first": 3, "a": 3, "b": 3, "c": 3, "last": 3}

        # A replica that dies in the middle of a group: nothing renews or releases its lease,
        # and once the lease has lapsed the other replica takes the execution over.
        one = await stack.execute("slow-fanout")
        # The replica asked may lose the lease to the other's scan (every 0.3 s here), which
        # is then still building its runner when the answer comes: wait until one runs it.
        await settled(
            lambda: _value(
                (one.id in first.supervisor.runners) + (one.id in second.supervisor.runners)
            ),
            lambda running: running == 1,
            timeout=5,
        )
        owner, other = (first, second) if one.id in first.supervisor.runners else (second, first)
        assert one.id not in other.supervisor.runners
        # `a` done, `b` and `c` under way: what a takeover must run again, and what not.
        await settled(
            lambda: stack.get(one.id),
            lambda v: step(v, "a").status == "succeeded" and step(v, "b").status == "running",
        )
        owner.supervisor.leases.held.clear()  # so that its runner's end releases nothing
        await cancel_and_wait(*owner.supervisor._loops, owner.supervisor.runners[one.id])
        await settled(lambda: _value(one.id in other.supervisor.runners), bool, timeout=5)
        view = await stack.finished(one.id, timeout=15)
        assert view.status == "succeeded", view.error
        calls = Counter(c["body"]["step"] for c in stack.calls())
        assert (calls["first"], calls["a"], calls["last"]) == (4, 4, 4)
        assert (step(view, "b").attempts, step(view, "c").attempts) == (2, 2)
    finally:
        await second.runtime.stop()


async def _value(value: T) -> T:
    return value


async def _stored_view(stack: Stack, execution_id: str) -> ExecutionView:
    """What the store says, with the workflow service down."""
    store = await open_store(stack.settings.effective_store, "workflow")
    try:
        envelopes = await store.read(execution_stream(execution_id))
    finally:
        await store.close()
    events = [CODEC.decode(e) for e in envelopes]
    record = timeline.begin(envelopes[0], events[0], [])
    for envelope, event in zip(envelopes[1:], events[1:], strict=True):
        timeline.apply(record, envelope, event)
    return timeline.view(record)
