"""`--param KEY=VALUE`: JSON when it parses, but text where the parameter's schema says so."""

from __future__ import annotations

from cortex.cli.inputs import param_pairs

SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "n": {"type": "integer"},
        "maybe": {"type": ["string", "null"]},
        "free": {},
    },
}


def test_a_string_parameter_takes_the_text_as_typed() -> None:
    params = param_pairs(["text=5", "maybe=true", "n=5", "free=5"], SCHEMA)
    assert params == {"text": "5", "maybe": "true", "n": 5, "free": 5}


def test_a_json_value_the_schema_allows_stays_json() -> None:
    assert param_pairs(['text="7"', "maybe=null"], SCHEMA) == {"text": "7", "maybe": None}


def test_without_a_schema_a_value_is_json_when_it_parses() -> None:
    assert param_pairs(["text=5", "word=hello", "unknown=5"]) == {
        "text": 5,
        "word": "hello",
        "unknown": 5,
    }
    assert param_pairs(["unknown=5"], SCHEMA) == {"unknown": 5}
