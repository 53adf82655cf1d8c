from __future__ import annotations

import msgspec

from cortex.contracts.errors import ErrorCode
from cortex.contracts.names import DnsLabel
from cortex.kernel.errors import (
    Conflict,
    Invalid,
    NotFound,
    from_contract,
    from_validation,
    readable,
)


class Scale(msgspec.Struct):
    name: str
    replicas: int


def test_a_wrong_type_names_its_json_path() -> None:
    try:
        msgspec.json.decode(b'{"name": "a", "replicas": "three"}', type=Scale)
    except msgspec.ValidationError as exc:
        err = from_validation(exc)
    assert err.code is ErrorCode.INVALID
    assert err.violations[0].field == "$.replicas"
    assert "Expected `int`, got `str`" in err.violations[0].message
    assert err.message.startswith("$.replicas:")


def test_a_missing_field_is_reported_at_its_own_path() -> None:
    try:
        msgspec.json.decode(b'{"replicas": 1}', type=Scale)
    except msgspec.ValidationError as exc:
        err = from_validation(exc)
    assert err.violations[0].field == "$.name"
    assert err.violations[0].message == "required field is missing"


def test_malformed_json_is_invalid_at_the_root() -> None:
    try:
        msgspec.json.decode(b"{nope", type=Scale)
    except msgspec.DecodeError as exc:
        err = from_validation(exc)
    assert err.violations[0].field == "$"


def test_errors_survive_the_wire_with_code_and_details() -> None:
    for original in (
        NotFound("no agent x"),
        Conflict("taken", details={"current_version": 3}),
        Invalid.field("$.replicas", "must be 0 or more"),
    ):
        wire = msgspec.json.encode(original.to_contract())
        from cortex.contracts.errors import Error

        back = from_contract(msgspec.json.decode(wire, type=Error))
        assert type(back) is type(original)
        assert back.message == original.message
        assert back.details == original.details
    assert isinstance(back, Invalid)
    assert back.violations[0].field == "$.replicas"


class Named(msgspec.Struct):
    name: DnsLabel


def test_a_name_that_breaks_its_pattern_is_told_in_words() -> None:
    try:
        msgspec.json.decode(b'{"name": "Bad_Name"}', type=Named)
    except msgspec.ValidationError as exc:
        err = from_validation(exc)
    assert err.violations[0].field == "$.name"
    assert err.violations[0].message.startswith("must be a DNS label: 1 to 63 lowercase letters")
    assert "regex" not in err.message


def test_a_pattern_of_no_contract_is_left_as_msgspec_says_it() -> None:
    assert readable("Expected `str` matching regex '^x$'") == "Expected `str` matching regex '^x$'"
