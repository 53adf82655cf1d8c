"""The issue's fanout template end to end, and the template and workflow endpoints around it."""

from __future__ import annotations

import copy

import pytest

from cortex.contracts.workflow import (
    CreateWorkflow,
    Execute,
    ExecutionPage,
    ExecutionView,
    GetWorkflowTemplate,
    ListExecutions,
    ListWorkflows,
    ListWorkflowTemplates,
    WorkflowPage,
    WorkflowRef,
    WorkflowTemplateRegistration,
    WorkflowTemplateSummary,
    WorkflowTemplateVersions,
    WorkflowTemplateView,
    WorkflowView,
)
from cortex.kernel.errors import Conflict, Invalid, NotFound
from tests.integration.workflow.conftest import Stack, step
from tests.unit.workflow.test_validation import FANOUT


async def test_the_fanout_template_runs_end_to_end_with_its_group_in_parallel(stack: Stack) -> None:
    await stack.agent("wf-echo", "echo")
    registered = await stack.register(FANOUT)
    assert (registered.name, registered.version, len(registered.steps)) == ("fanout", "1", 2)

    view = await stack.run("fanout", {"text": "hello"})

    assert view.status == "succeeded", view.error
    assert (view.template, view.template_version, view.params) == ("fanout", "1", {"text": "hello"})
    assert [(s.id, s.parent, s.status, s.attempts) for s in view.steps] == [
        ("first", None, "succeeded", 1),
        ("a", "parallel-1", "succeeded", 1),
        ("b", "parallel-1", "succeeded", 1),
        ("c", "parallel-1", "succeeded", 1),
    ]
    assert step(view, "first").output == {"text": "hello"}
    assert step(view, "a").output == {"branch": "a", "prev": {"text": "hello"}}
    assert step(view, "b").output == {"branch": "b"}
    group = [step(view, i) for i in "abc"]
    # The three ran at the same time: each started before any of them finished.
    assert max(s.started_at for s in group) < min(s.finished_at for s in group)
    assert step(view, "first").finished_at <= min(s.started_at for s in group)
    assert view.finished_at is not None
    assert view.finished_at >= max(s.finished_at for s in group)

    workflow = await stack.call("workflow.get", WorkflowRef(view.workflow_id), WorkflowView)
    assert (workflow.executions, workflow.last_execution) == (1, view.id)
    page = await stack.call("execution.list", ListExecutions(workflow=workflow.id), ExecutionPage)
    assert [e.id for e in page.items] == [view.id]
    assert page.items[0].status == "succeeded"
    of_template = ListExecutions(template=view.template)
    page = await stack.call("execution.list", of_template, ExecutionPage)
    assert [e.id for e in page.items] == [view.id]
    other = ListExecutions(template="no-such-template")
    assert (await stack.call("execution.list", other, ExecutionPage)).items == []


async def test_templates_are_validated_versioned_and_immutable(stack: Stack) -> None:
    first = await stack.call("template.register", FANOUT, WorkflowTemplateRegistration)
    again = await stack.call("template.register", FANOUT, WorkflowTemplateRegistration)
    assert (first.created, again.created) == (True, False)  # the same again: a no-op, and says so
    assert again.template == first.template
    changed = copy.deepcopy(FANOUT)
    changed["description"] = "another definition"
    with pytest.raises(Conflict, match="register a new version"):
        await stack.register(changed)
    await stack.register({**changed, "version": "2"})

    bad = copy.deepcopy(FANOUT)
    bad["name"] = "broken"
    bad["steps"][1]["parallel"][0]["input"]["prev"] = "${steps.b.output}"
    del bad["steps"][1]["parallel"][2]["agent"]
    with pytest.raises(Invalid) as caught:
        await stack.register(bad)
    assert {v.field for v in caught.value.violations} == {
        "$.steps[1].parallel[0].input.prev",
        "$.steps[1].parallel[2].agent",
    }
    with pytest.raises(Invalid) as caught:  # the Struct's own checks name their path too
        await stack.register({**FANOUT, "steps": [{"id": "x", "type": "ftp"}]})
    assert caught.value.violations[0].field == "$.steps[0].type"

    versions = await stack.call(
        "template.get", GetWorkflowTemplate("fanout"), WorkflowTemplateVersions
    )
    assert [v.version for v in versions.versions] == ["1", "2"]
    summaries = await stack.call(
        "template.list", ListWorkflowTemplates(), list[WorkflowTemplateSummary]
    )
    assert [(s.name, s.latest, s.versions) for s in summaries] == [("fanout", "2", ["1", "2"])]
    with pytest.raises(NotFound):
        await stack.call("template.get", GetWorkflowTemplate("nope"), WorkflowTemplateView)


async def test_workflows_pin_a_version_and_check_their_params(stack: Stack) -> None:
    await stack.register(FANOUT)
    await stack.register({**FANOUT, "version": "2", "description": "v2"})
    with pytest.raises(Invalid) as caught:
        await stack.call(
            "workflow.create", CreateWorkflow(template="fanout", params={"text": 5}), WorkflowView
        )
    assert [v.field for v in caught.value.violations] == ["$.params.text"]
    with pytest.raises(NotFound):
        await stack.call("workflow.create", CreateWorkflow(template="fanout@9"), WorkflowView)

    pinned = await stack.call(
        "workflow.create",
        CreateWorkflow(template="fanout@1", params={"text": "x"}, name="mine"),
        WorkflowView,
    )
    latest = await stack.call(
        "workflow.create", CreateWorkflow(template="fanout", params={"text": "y"}), WorkflowView
    )
    assert (pinned.template_version, pinned.name, latest.template_version) == ("1", "mine", "2")
    page = await stack.call("workflow.list", ListWorkflows(limit=1), WorkflowPage)
    assert [w.id for w in page.items] == [latest.id]
    page = await stack.call("workflow.list", ListWorkflows(limit=1, before=page.next), WorkflowPage)
    assert ([w.id for w in page.items], page.next) == ([pinned.id], None)

    # Params given at execution override the workflow's and are checked again.
    with pytest.raises(Invalid) as caught:
        await stack.call(
            "workflow.execute", Execute(workflow_id=pinned.id, params={"text": []}), ExecutionView
        )
    assert [v.field for v in caught.value.violations] == ["$.params.text"]
    with pytest.raises(NotFound):
        await stack.call("workflow.execute", Execute(workflow_id="nope"), ExecutionView)
