"""The execution aggregate and its read model: given events, then state, decisions and views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from cortex.contracts.events import EventEnvelope
from cortex.contracts.workflow import (
    CreateWorkflow,
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionSucceeded,
    StepFailed,
    StepRetrying,
    StepStarted,
    StepSucceeded,
    WorkflowCreated,
    WorkflowTemplateRegistered,
    WorkflowTemplateSpec,
)
from cortex.kernel.errors import Conflict, NotFound
from cortex.workflow import domain, timeline
from cortex.workflow.domain import CODEC, ExecutionState
from cortex.workflow.projections import (
    ExecutionsProjection,
    TemplatesProjection,
    WorkflowsProjection,
    newest_first,
)
from tests.unit.workflow.test_validation import FANOUT

SPEC = msgspec.convert(FANOUT, WorkflowTemplateSpec)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STARTED = ExecutionStarted(
    execution_id="e1",
    workflow_id="w1",
    template="fanout",
    template_version="1",
    params={"text": "hi"},
)


def given(*events: Any) -> ExecutionState:
    state = ExecutionState()
    for event in events:
        state = domain.evolve_execution(state, event)
    return state


class Stream:
    """Envelopes as the store hands them out: versions per stream, positions overall, one
    second apart."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def envelope(self, stream_id: str, event: Any) -> EventEnvelope:
        self.position += 1
        version = self.versions[stream_id] = self.versions.get(stream_id, 0) + 1
        new = CODEC.new(event, stream_type=stream_id.split("-", maxsplit=1)[0])
        return EventEnvelope(
            event_id=new.event_id,
            stream_id=stream_id,
            stream_type=new.stream_type,
            version=version,
            position=self.position,
            type=new.type,
            data=new.data,
            occurred_at=T0 + timedelta(seconds=self.position),
        )


def test_a_started_execution_is_running_and_steps_fold_in() -> None:
    state = given(
        STARTED,
        StepStarted(step_id="first", attempt=1),
        StepSucceeded(step_id="first", attempt=1, output={"text": "hi"}),
        StepStarted(step_id="b", attempt=1),
        StepFailed(step_id="b", attempt=1, error="boom", final=False),
        StepRetrying(step_id="b", attempt=2, delay=1.0),
        StepStarted(step_id="b", attempt=2),
    )
    assert state.status == "running"
    assert state.step("first").status == "succeeded"
    assert state.step("first").output == {"text": "hi"}
    b = state.step("b")
    assert (b.status, b.attempt, b.failures, b.error) == ("running", 2, 1, "boom")
    assert state.step("c").status == "pending"


def test_cancel_only_a_running_execution() -> None:
    assert domain.cancel_execution(given(STARTED), "e1", "cancelled") == [
        ExecutionCancelled(reason="cancelled")
    ]
    for end in (ExecutionSucceeded(), ExecutionFailed(error="x"), ExecutionCancelled()):
        with pytest.raises(Conflict, match="has finished"):
            domain.cancel_execution(given(STARTED, end), "e1", "cancelled")
    with pytest.raises(NotFound):
        domain.cancel_execution(given(), "e1", "cancelled")


def test_template_versions_are_immutable_and_resolved_by_name_or_version() -> None:
    state = domain.TemplateState()
    assert domain.register_template(state, SPEC) == [WorkflowTemplateRegistered(spec=SPEC)]
    state = domain.evolve_template(state, WorkflowTemplateRegistered(spec=SPEC))
    assert domain.register_template(state, SPEC) == []
    changed = msgspec.structs.replace(SPEC, description="other")
    with pytest.raises(Conflict, match="register a new version"):
        domain.register_template(state, changed)
    v2 = msgspec.structs.replace(SPEC, version="2")
    state = domain.evolve_template(state, WorkflowTemplateRegistered(spec=v2))
    assert domain.pick_version(state, "fanout").version == "2"
    assert domain.pick_version(state, "fanout@1").version == "1"
    with pytest.raises(NotFound, match="no version '3'"):
        domain.pick_version(state, "fanout@3")
    with pytest.raises(NotFound):
        domain.pick_version(domain.TemplateState(), "fanout")


def test_the_layout_flattens_groups_and_names_them_by_position() -> None:
    nested = msgspec.convert(
        {
            "name": "n",
            "steps": [
                {"id": "x", "type": "transform", "output": 1},
                {
                    "parallel": [
                        {"id": "y", "type": "transform", "output": 1},
                        {"parallel": [{"id": "z", "type": "transform", "output": 1}]},
                    ]
                },
            ],
        },
        WorkflowTemplateSpec,
    )
    assert [(s.id, s.parent) for s in timeline.layout(nested)] == [
        ("x", None),
        ("y", "parallel-1"),
        ("z", "parallel-1.1"),
    ]


def run_projection(*stream: tuple[str, Any]) -> ExecutionsProjection:
    projection = ExecutionsProjection()
    log = Stream()
    for stream_id, event in stream:
        projection.apply(log.envelope(stream_id, event))
    return projection


def test_the_timeline_given_events() -> None:
    projection = run_projection(
        ("wftemplate-fanout", WorkflowTemplateRegistered(spec=SPEC)),  # position 1
        ("execution-e1", STARTED),  # 2
        ("execution-e1", StepStarted(step_id="first", attempt=1)),  # 3
        ("execution-e1", StepSucceeded(step_id="first", attempt=1, output="hi")),  # 4
        ("execution-e1", StepStarted(step_id="a", attempt=1)),  # 5
        ("execution-e1", StepStarted(step_id="b", attempt=1)),  # 6
        ("execution-e1", StepFailed(step_id="b", attempt=1, error="boom", final=False)),  # 7
        ("execution-e1", StepRetrying(step_id="b", attempt=2, delay=1.0)),  # 8
        ("execution-e1", StepSucceeded(step_id="a", attempt=1, output={"x": 1})),  # 9
        ("execution-e1", StepStarted(step_id="b", attempt=2)),  # 10
    )
    view = timeline.view(projection.model.by_id["e1"])
    assert (view.status, view.version, view.started_at) == ("running", 9, T0 + timedelta(seconds=2))
    steps = {s.id: s for s in view.steps}
    assert [s.id for s in view.steps] == ["first", "a", "b", "c"]
    assert (steps["first"].parent, steps["a"].parent) == (None, "parallel-1")
    first = steps["first"]
    assert (first.status, first.attempts, first.output) == ("succeeded", 1, "hi")
    assert (first.started_at, first.finished_at) == (
        T0 + timedelta(seconds=3),
        T0 + timedelta(seconds=4),
    )
    b = steps["b"]
    assert (b.status, b.attempts, b.error) == ("running", 2, "boom")
    assert b.started_at == T0 + timedelta(seconds=6)  # the first attempt's start
    assert steps["c"].status == "pending"
    assert projection.running() == ["e1"]
    assert projection.model.position == 10


def test_an_execution_that_fails_stops_its_running_steps_and_skips_the_rest() -> None:
    projection = run_projection(
        ("wftemplate-fanout", WorkflowTemplateRegistered(spec=SPEC)),
        ("execution-e1", STARTED),
        ("execution-e1", StepStarted(step_id="first", attempt=1)),
        ("execution-e1", StepFailed(step_id="first", attempt=1, error="boom", final=True)),
        (
            "execution-e1",
            ExecutionFailed(error="step first failed after 1 attempt: boom", step_id="first"),
        ),
    )
    view = timeline.view(projection.model.by_id["e1"])
    assert (view.status, view.error) == ("failed", "step first failed after 1 attempt: boom")
    assert view.finished_at == T0 + timedelta(seconds=5)
    assert [(s.id, s.status) for s in view.steps] == [
        ("first", "failed"),
        ("a", "skipped"),
        ("b", "skipped"),
        ("c", "skipped"),
    ]
    assert projection.running() == []


def test_a_cancelled_execution_marks_running_steps_cancelled() -> None:
    projection = run_projection(
        ("wftemplate-fanout", WorkflowTemplateRegistered(spec=SPEC)),
        ("execution-e1", STARTED),
        ("execution-e1", StepStarted(step_id="first", attempt=1)),
        ("execution-e1", StepSucceeded(step_id="first", attempt=1, output="x")),
        ("execution-e1", StepStarted(step_id="a", attempt=1)),
        ("execution-e1", StepStarted(step_id="b", attempt=1)),
        ("execution-e1", StepSucceeded(step_id="b", attempt=1, output="y")),
        ("execution-e1", ExecutionCancelled(reason="cancelled by ops")),
    )
    view = timeline.view(projection.model.by_id["e1"])
    assert (view.status, view.error) == ("cancelled", "cancelled by ops")
    assert {s.id: s.status for s in view.steps} == {
        "first": "succeeded",
        "a": "cancelled",
        "b": "succeeded",
        "c": "skipped",
    }
    a = next(s for s in view.steps if s.id == "a")
    assert a.finished_at == view.finished_at


def test_workflows_count_their_executions_and_templates_keep_every_version() -> None:
    log = Stream()
    workflows, templates = WorkflowsProjection(), TemplatesProjection()
    created = WorkflowCreated(
        workflow_id="w1", template="fanout", template_version="1", params={"text": "x"}
    )
    for stream_id, event in [
        ("wftemplate-fanout", WorkflowTemplateRegistered(spec=SPEC)),
        (
            "wftemplate-fanout",
            WorkflowTemplateRegistered(spec=msgspec.structs.replace(SPEC, version="2")),
        ),
        ("workflow-w1", created),
        ("execution-e1", STARTED),
        ("execution-e2", msgspec.structs.replace(STARTED, execution_id="e2")),
    ]:
        envelope = log.envelope(stream_id, event)
        workflows.apply(envelope)
        templates.apply(envelope)
    view = workflows.get("w1").view()
    assert (view.executions, view.last_execution, view.params) == (2, "e2", {"text": "x"})
    assert [v.version for v in templates.versions("fanout")] == ["1", "2"]
    assert templates.get("fanout").version == "2"
    assert templates.get("fanout@1").registered_at == T0 + timedelta(seconds=1)
    with pytest.raises(NotFound):
        workflows.get("w2")
    assert CreateWorkflow(template="fanout").params == {}


def test_pages_are_newest_first_with_a_cursor() -> None:
    ids = ["0001", "0003", "0002", "0005", "0004"]
    page, nxt = newest_first(ids, lambda i: i, 2, None)
    assert (page, nxt) == (["0005", "0004"], "0004")
    page, nxt = newest_first(ids, lambda i: i, 2, nxt)
    assert (page, nxt) == (["0003", "0002"], "0002")
    page, nxt = newest_first(ids, lambda i: i, 2, nxt)
    assert (page, nxt) == (["0001"], None)
