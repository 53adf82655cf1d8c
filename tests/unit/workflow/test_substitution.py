"""`${...}` references: parsing, paths, whole values against formatted strings, missing paths."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.workflow.substitution import ReferenceError, parse, references, substitute

SCOPE: dict[str, Any] = {
    "params": {"text": "hi", "n": 3, "tags": ["x", "y"]},
    "steps": {
        "first": {"output": {"text": "hello", "items": [{"name": "a"}, {"name": "b"}], "ok": True}},
        "plain": {"output": "just text"},
        "nothing": {"output": None},
    },
}


def test_parse_splits_root_step_and_path() -> None:
    ref = parse("steps.first.output.items[1].name")
    assert (ref.root, ref.step, ref.path) == ("steps", "first", ("items", 1, "name"))
    assert parse("steps.first.output[0]").path == (0,)
    assert parse("params").path == ()
    assert parse("params.a.b").path == ("a", "b")
    assert str(parse("params.a")) == "${params.a}"


@pytest.mark.parametrize(
    "text", ["env.HOME", "steps.first", "steps.first.input", "steps..output", "params.a[x]", ""]
)
def test_parse_refuses_what_is_not_a_reference(text: str) -> None:
    with pytest.raises(ValueError, match=r"reference|step.s result|path"):
        parse(text)


def test_a_string_that_is_exactly_one_reference_takes_the_value_itself() -> None:
    assert substitute("${params.n}", SCOPE) == 3
    assert substitute("${steps.first.output}", SCOPE) == SCOPE["steps"]["first"]["output"]
    assert substitute("${steps.first.output.items[1].name}", SCOPE) == "b"
    assert substitute("${steps.first.output.ok}", SCOPE) is True
    assert substitute("${steps.nothing.output}", SCOPE) is None
    assert substitute("${params.tags}", SCOPE) == ["x", "y"]


def test_references_inside_a_longer_string_are_formatted_into_it() -> None:
    assert substitute("say ${params.text} ${params.n} times", SCOPE) == "say hi 3 times"
    assert substitute("tags=${params.tags}", SCOPE) == 'tags=["x","y"]'
    assert substitute("${params.text}${steps.plain.output}", SCOPE) == "hijust text"
    assert substitute("v: ${steps.nothing.output}", SCOPE) == "v: null"
    assert substitute("no references here", SCOPE) == "no references here"


def test_substitution_goes_through_objects_and_lists_and_leaves_other_values() -> None:
    value = {"a": ["${params.n}", {"b": "x${params.text}"}], "c": 1.5, "d": None, "e": False}
    assert substitute(value, SCOPE) == {"a": [3, {"b": "xhi"}], "c": 1.5, "d": None, "e": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${steps.first.output.missing}",
            "${steps.first.output.missing}: steps.first.output has no key 'missing'",
        ),
        (
            "${steps.plain.output.text}",
            "${steps.plain.output.text}: steps.plain.output is a string, not an object",
        ),
        (
            "${steps.first.output.items[5]}",
            "${steps.first.output.items[5]}: steps.first.output.items has no index 5 "
            "(it has 2 items)",
        ),
        (
            "${steps.first.output.text[0]}",
            "${steps.first.output.text[0]}: steps.first.output.text is a string, not a list",
        ),
        ("x ${params.nope} y", "${params.nope}: params has no key 'nope'"),
        ("${steps.ghost.output}", "${steps.ghost.output}: step 'ghost' has no output yet"),
        (
            "${steps.nothing.output.a}",
            "${steps.nothing.output.a}: steps.nothing.output is null, not an object",
        ),
    ],
)
def test_a_path_that_does_not_resolve_names_the_reference_and_where_it_stopped(
    text: str, message: str
) -> None:
    with pytest.raises(ReferenceError) as caught:
        substitute({"deep": [text]}, SCOPE)
    assert str(caught.value) == message


def test_references_are_listed_with_where_they_are() -> None:
    value = {"a": "${params.x}", "b": [1, "p ${steps.s.output} q ${params.y}"], "c": 5}
    assert list(references(value)) == [
        (("a",), "params.x"),
        (("b", 1), "steps.s.output"),
        (("b", 1), "params.y"),
    ]
