import pytest

from cortex.kernel.errors import Invalid
from cortex.kernel.schema_checks import check_instance, schema_problems

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "limits": {
            "type": "object",
            "properties": {"rate": {"type": "integer"}},
            "required": ["rate"],
        },
    },
    "required": ["name", "limits"],
}


def test_a_missing_property_is_named_by_its_own_path() -> None:
    with pytest.raises(Invalid) as caught:
        check_instance(SCHEMA, {"limits": {}}, "$.config")
    assert [v.field for v in caught.value.violations] == ["$.config.limits.rate", "$.config.name"]
    assert caught.value.message == (
        "$.config.limits.rate: 'rate' is a required property (and 1 more)"
    )


def test_a_wrong_value_is_named_by_its_path_and_a_good_one_passes() -> None:
    check_instance(SCHEMA, {"name": "a", "limits": {"rate": 1}}, "$.config")
    with pytest.raises(Invalid) as caught:
        check_instance(SCHEMA, {"name": 3, "limits": {"rate": 1}}, "$.config")
    assert [v.field for v in caught.value.violations] == ["$.config.name"]
    assert "3 is not of type 'string'" in caught.value.message


def test_a_broken_schema_is_reported_where_it_breaks() -> None:
    assert schema_problems(SCHEMA, "$.config_schema") == []
    problems = schema_problems({"properties": {"x": {"type": "nonsense"}}}, "$.config_schema")
    assert problems[0].field == "$.config_schema.properties.x.type"
    assert problems[0].message.startswith("not a valid JSON Schema")


REDOS = "^(a+)+$"
EVIL = "a" * 40 + "!"


def test_a_catastrophic_pattern_is_checked_in_linear_time() -> None:
    """With Python's backtracking `re` (what jsonschema uses), this check never ends."""
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": REDOS}}}
    assert schema_problems(schema, "$.config_schema") == []
    with pytest.raises(Invalid) as caught:
        check_instance(schema, {"x": EVIL}, "$.config")
    assert caught.value.message == f"$.config.x: {EVIL!r} does not match {REDOS!r}"
    check_instance(schema, {"x": "aaaa"}, "$.config")


def test_pattern_properties_and_the_extras_they_decide_run_in_linear_time() -> None:
    schema = {
        "type": "object",
        "patternProperties": {REDOS: {"type": "integer"}},
        "additionalProperties": False,
    }
    with pytest.raises(Invalid) as caught:
        check_instance(schema, {EVIL: 1}, "$.config")
    assert caught.value.message == (
        f"$.config: {EVIL!r} does not match any of the regexes: {REDOS!r}"
    )
    with pytest.raises(Invalid) as wrong:
        check_instance(schema, {"aaa": "one"}, "$.config")
    assert wrong.value.violations[0].field == "$.config.aaa"
    check_instance(schema, {"aaa": 1}, "$.config")
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    with pytest.raises(Invalid) as extra:
        check_instance(closed, {"a": 1, "b": 2}, "$.config")
    assert extra.value.message == (
        "$.config: Additional properties are not allowed ('b' was unexpected)"
    )


def test_patterns_re2_cannot_run_are_refused_where_they_are() -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {"type": "string", "pattern": "^(?!admin).*$"},
            "y": {"type": "object", "patternProperties": {"(a)\\1": {}}},
        },
    }
    problems = schema_problems(schema, "$.config_schema")
    assert [p.field for p in problems] == [
        "$.config_schema.properties.x.pattern",
        "$.config_schema.properties.y.patternProperties.(a)\\1",
    ]
    assert "no lookaround or backreferences" in problems[0].message
    both = {"patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    assert [p.message for p in schema_problems(both, "$.params")] == [
        "patternProperties cannot be combined with unevaluatedProperties"
    ]


def test_a_secret_fields_value_is_not_repeated_in_its_problem() -> None:
    schema = {
        "type": "object",
        "properties": {
            "token": {"type": "string", "writeOnly": True, "minLength": 12},
            "name": {"type": "string", "minLength": 3},
        },
    }
    with pytest.raises(Invalid) as refused:
        check_instance(schema, {"token": "sk-short", "name": "ab"}, "$.config")
    by_field = {v.field: v.message for v in refused.value.violations}
    assert "sk-short" not in str(refused.value.message)
    assert by_field["$.config.token"] == (
        "does not satisfy `minLength` (12); the value is secret, so it is not repeated"
    )
    assert by_field["$.config.name"] == "'ab' is too short"  # others keep jsonschema's words
