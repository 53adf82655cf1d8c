"""Template validation: the issue's template is accepted; each class of problem is refused at
its JSON path, all problems at once."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from cortex.contracts.workflow import WorkflowTemplateSpec
from cortex.kernel.errors import Invalid
from cortex.workflow.validation import check_params, check_template

FANOUT: dict[str, Any] = {
    "name": "fanout",
    "version": "1",
    "params": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
    "steps": [
        {"id": "first", "type": "agent", "agent": "wf-echo", "input": {"text": "${params.text}"}},
        {
            "parallel": [
                {
                    "id": "a",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "a", "prev": "${steps.first.output}"},
                },
                {
                    "id": "b",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "b"},
                    "retry": {"attempts": 3, "backoff": "1s"},
                },
                {
                    "id": "c",
                    "type": "agent",
                    "agent": "wf-echo",
                    "input": {"branch": "c"},
                    "timeout": "10s",
                },
            ]
        },
    ],
}


def spec(steps: list[dict[str, Any]], **fields: Any) -> WorkflowTemplateSpec:
    return msgspec.convert({"name": "t", "steps": steps, **fields}, WorkflowTemplateSpec)


def problems(template: WorkflowTemplateSpec) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        check_template(template)
    return {v.field: v.message for v in caught.value.violations}


def test_the_issue_template_is_accepted_as_written() -> None:
    check_template(msgspec.convert(FANOUT, WorkflowTemplateSpec))


def test_every_task_type_in_its_valid_form_is_accepted() -> None:
    check_template(
        spec(
            [
                {"id": "p", "type": "agent", "pool": "workers", "input": "${params}"},
                {
                    "id": "h",
                    "type": "http",
                    "method": "post",
                    "url": "http://example.test/${steps.p.output.path}",
                    "headers": {"X-Id": "${steps.p.output.id}"},
                    "body": {"items": ["${steps.p.output.items[0]}"]},
                    "expect_status": [200, 404],
                },
                {"id": "s", "type": "state", "agent": "a1", "op": "patch", "value": {"k": 1}},
                {"id": "s2", "type": "state", "agent": "a1", "op": "patch", "value": "${params.p}"},
                {"id": "g", "type": "state", "agent": "a1", "op": "get"},
                {"id": "t1", "type": "transform", "expression": "steps.h.output.body"},
                {"id": "t2", "type": "transform", "output": {"n": "${steps.t1.output}"}},
                {
                    "parallel": [
                        {"id": "n1", "type": "transform", "output": 1},
                        {"parallel": [{"id": "n2", "type": "transform", "output": 2}]},
                    ]
                },
                {"id": "last", "type": "transform", "output": "${steps.n2.output}"},
            ]
        )
    )


def test_params_must_be_a_json_schema() -> None:
    found = problems(spec([{"id": "x", "type": "transform", "output": 1}], params={"type": 5}))
    assert list(found) == ["$.params.type"]
    assert "not a valid JSON Schema" in found["$.params.type"]


def test_a_task_needs_an_id_and_a_type_and_ids_are_unique_across_groups() -> None:
    found = problems(
        spec(
            [
                {"type": "transform", "output": 1},
                {"id": "x"},
                {"id": "dup", "type": "transform", "output": 1},
                {"parallel": [{"id": "dup", "type": "transform", "output": 1}]},
                {"id": "bad.id", "type": "transform", "output": 1},
            ]
        )
    )
    assert found["$.steps[0].id"] == "required field is missing"
    assert found["$.steps[1].type"].startswith("required field is missing")
    assert found["$.steps[3].parallel[0].id"] == "step id 'dup' is used already at $.steps[2].id"
    assert "$.steps[4].id" in found


def test_a_group_has_steps_and_no_type() -> None:
    found = problems(
        spec(
            [
                {"parallel": []},
                {"type": "agent", "parallel": [{"id": "x", "type": "transform", "output": 1}]},
            ]
        )
    )
    assert found == {
        "$.steps[0].parallel": "a parallel group holds at least one step",
        "$.steps[1].type": "a parallel group has no type (its steps have)",
    }


def test_required_fields_per_task_type() -> None:
    found = problems(
        spec(
            [
                {"id": "a1", "type": "agent"},
                {"id": "a2", "type": "agent", "agent": "x", "pool": "p"},
                {"id": "h1", "type": "http"},
                {"id": "h2", "type": "http", "url": "ftp://x", "method": "FETCH"},
                {"id": "h3", "type": "http", "url": "http://x", "expect_status": [200, 42]},
                {"id": "s1", "type": "state"},
                {"id": "s2", "type": "state", "agent": "x", "op": "put"},
                {"id": "s3", "type": "state", "agent": "x", "op": "patch", "value": [1]},
                {"id": "t1", "type": "transform"},
                {"id": "t2", "type": "transform", "expression": "a", "output": 1},
                {"id": "t3", "type": "transform", "expression": "a[?"},
            ]
        )
    )
    assert set(found) == {
        "$.steps[0].agent",
        "$.steps[1].pool",
        "$.steps[2].url",
        "$.steps[3].url",
        "$.steps[3].method",
        "$.steps[4].expect_status[1]",
        "$.steps[5].agent",
        "$.steps[5].op",
        "$.steps[6].value",
        "$.steps[7].value",
        "$.steps[8].expression",
        "$.steps[9].output",
        "$.steps[10].expression",
    }
    assert found["$.steps[10].expression"].startswith("not a JMESPath expression")


def test_durations_and_attempts() -> None:
    found = problems(
        spec(
            [
                {
                    "id": "x",
                    "type": "transform",
                    "output": 1,
                    "timeout": "soon",
                    "retry": {"attempts": 0, "backoff": "1 fortnight", "max_backoff": "1m"},
                },
                {"id": "y", "type": "transform", "output": 1, "timeout": "0s"},
            ]
        )
    )
    assert set(found) == {
        "$.steps[0].timeout",
        "$.steps[0].retry.attempts",
        "$.steps[0].retry.backoff",
        "$.steps[1].timeout",
    }
    assert "is not a duration" in found["$.steps[0].timeout"]


def test_references_to_later_unknown_sibling_or_own_steps_are_refused_at_their_field() -> None:
    found = problems(
        spec(
            [
                {"id": "first", "type": "agent", "agent": "x", "input": "${steps.later.output}"},
                {
                    "parallel": [
                        {
                            "id": "a",
                            "type": "agent",
                            "agent": "wf-echo",
                            "input": {"prev": "${steps.b.output}", "ok": "${steps.first.output}"},
                        },
                        {"id": "b", "type": "transform", "output": ["${steps.nobody.output}"]},
                        {
                            "parallel": [
                                {"id": "c", "type": "transform", "output": "${steps.a.output}"}
                            ]
                        },
                    ]
                },
                {"id": "later", "type": "transform", "output": "x ${steps.later.output.y} y"},
                {"id": "bad", "type": "http", "url": "http://h/${steps.first.input}"},
                {"id": "bad2", "type": "transform", "output": "${env.HOME}"},
            ]
        )
    )
    assert set(found) == {
        "$.steps[0].input",
        "$.steps[1].parallel[0].input.prev",
        "$.steps[1].parallel[1].output[0]",
        "$.steps[1].parallel[2].parallel[0].output",
        "$.steps[2].output",
        "$.steps[3].url",
        "$.steps[4].output",
    }
    assert "comes later" in found["$.steps[0].input"]
    assert "same parallel group" in found["$.steps[1].parallel[0].input.prev"]
    assert "there is no step 'nobody'" in found["$.steps[1].parallel[1].output[0]"]
    assert "same parallel group" in found["$.steps[1].parallel[2].parallel[0].output"]
    assert "its own output" in found["$.steps[2].output"]
    assert "steps.<id>.output" in found["$.steps[3].url"]


def test_the_summary_names_the_first_problem_and_counts_the_rest() -> None:
    with pytest.raises(Invalid) as caught:
        check_template(spec([{"id": "a1", "type": "agent"}, {"id": "h", "type": "http"}]))
    assert caught.value.message == (
        "$.steps[0].agent: an agent step names its agent (or a pool) (and 1 more)"
    )


def test_params_are_checked_against_the_schema_with_paths() -> None:
    schema = FANOUT["params"]
    check_params(schema, {"text": "hi"})
    with pytest.raises(Invalid) as caught:
        check_params(schema, {"text": 5})
    assert [v.field for v in caught.value.violations] == ["$.params.text"]
    with pytest.raises(Invalid) as caught:
        check_params(schema, {})
    assert caught.value.violations[0].field == "$.params.text"
    assert "'text' is a required property" in caught.value.message
