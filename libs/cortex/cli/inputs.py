"""What users hand the CLI: YAML or JSON files (`-f`, `-` for stdin) and `KEY=VALUE` flags."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from cortex.cli.client import CliError


def read_document(source: str) -> Any:
    """A YAML or JSON file (JSON is YAML too), or stdin for `-`, as plain JSON-able data."""
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {where}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{where} is neither YAML nor JSON: {_one_line(exc)}") from None
    return jsonable(data)


def read_mapping(source: str, what: str) -> dict[str, Any]:
    data = read_document(source)
    where = "stdin" if source == "-" else source
    if data is None:
        raise CliError(f"{where} is empty; it should hold {what}")
    if not isinstance(data, dict):
        raise CliError(f"{where} holds a {_kind(data)}; it should hold {what}")
    return data


def jsonable(value: Any) -> Any:
    """YAML turns `2026-01-02` into a date and allows non-string keys; JSON has neither, so
    both become strings here rather than failing later inside the HTTP client."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # YAML's !!binary
        return value.decode(errors="replace")
    return value


def split_pair(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CliError(f"{option} {item!r}: expected KEY=VALUE", exit_code=2)
    return key, value


def parse_value(text: str) -> Any:
    """`--config` and `--param` values: JSON when they parse (`3`, `true`, `{"a": 1}`), else the
    text itself, so that `--config model=gpt-4o` needs no quoting."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def config_pairs(items: Iterable[str]) -> dict[str, Any]:
    return {k: parse_value(v) for k, v in (split_pair(i, "--config") for i in items)}


def param_pairs(items: Iterable[str], schema: Any = None) -> dict[str, Any]:
    """`--param` values, each as its parameter's schema (the `params` JSON Schema) takes it."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        properties = {}
    return {
        k: typed_value(v, properties.get(k)) for k, v in (split_pair(i, "--param") for i in items)
    }


def typed_value(text: str, schema: Any) -> Any:
    """`parse_value`, unless the schema wants a string and no other type the JSON value has:
    then the text as typed, which is what `--param text=5` or `--param flag=true` meant."""
    value = parse_value(text)
    allowed = _allowed_types(schema)
    if "string" in allowed and not _json_types(value) & allowed:
        return text
    return value


def _allowed_types(schema: Any) -> set[str]:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _json_types(value: Any) -> set[str]:
    """The JSON Schema types a parsed JSON value satisfies."""
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"integer", "number"} if value.is_integer() else {"number"}
    if isinstance(value, str):
        return {"string"}
    return {"array"} if isinstance(value, list) else {"object"}


def label_pairs(items: Iterable[str]) -> dict[str, str]:
    return dict(split_pair(i, "--label") for i in items)


def header_pairs(items: Iterable[str]) -> dict[str, str]:
    return dict(split_pair(i, "--header") for i in items)


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "list"
    if isinstance(data, str):
        return "string"
    return type(data).__name__


def _one_line(exc: yaml.YAMLError) -> str:
    """`<problem> at line L, column C`: PyYAML's own text spans lines and names
    `<unicode string>` instead of the file."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and exc.problem_mark:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())
