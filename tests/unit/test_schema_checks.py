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
