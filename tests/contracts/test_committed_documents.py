"""The committed JSON Schema and OpenAPI documents are what the code generates."""

from __future__ import annotations

import json

import msgspec
import pytest

from cortex.contracts import generate
from cortex.contracts.errors import Error, ErrorCode
from cortex.contracts.events import EventEnvelope
from cortex.gateway import openapi


def test_json_schemas_under_contracts_are_current() -> None:
    wanted = generate.render()
    committed = {p.name: p.read_text() for p in generate.SCHEMA_DIR.glob("*.json")}
    stale = sorted(n for n in wanted if committed.get(n) != wanted[n])
    extra = sorted(set(committed) - set(wanted))
    assert not stale, f"contracts/schema is stale ({stale}); run `make contracts`"
    assert not extra, f"contracts/schema holds removed schemas ({extra}); run `make contracts`"


def test_openapi_document_under_contracts_is_current() -> None:
    assert openapi.COMMITTED.exists(), "run `make contracts`"
    assert openapi.COMMITTED.read_text() == openapi.render(), (
        "contracts/openapi/gateway.json is stale; run `make contracts`"
    )


def test_every_contract_struct_has_a_schema_that_names_its_required_fields() -> None:
    schema = json.loads(generate.render()["events.EventEnvelope.json"])
    envelope = schema["$defs"]["EventEnvelope"]
    assert {"event_id", "stream_id", "version", "position", "type", "data"} <= set(
        envelope["required"]
    )
    assert EventEnvelope in generate.contract_structs()


def test_the_error_code_list_is_closed() -> None:
    schema = json.loads(generate.render()["errors.Error.json"])
    codes = schema["$defs"]["ErrorCode"]["enum"]
    assert sorted(codes) == sorted(c.value for c in ErrorCode)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.code"):
        msgspec.json.decode(b'{"code": "oops", "message": "m"}', type=Error)
