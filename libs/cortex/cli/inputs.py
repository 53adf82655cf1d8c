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


def param_pairs(items: Iterable[str]) -> dict[str, Any]:
    return {k: parse_value(v) for k, v in (split_pair(i, "--param") for i in items)}


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
