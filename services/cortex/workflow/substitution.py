"""`${params.x}` and `${steps.<id>.output.<path>}`: parsing references and filling them in.

A string that is exactly one reference takes the referenced value itself, whatever its type
(`"${steps.fetch.output}"` is the whole object); a reference inside a longer string is
formatted into it (strings as they are, anything else as JSON). Paths are dotted keys and
`[n]` list indexes: `${steps.fetch.output.body.items[0].name}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

REFERENCE = re.compile(r"\$\{([^}]*)\}")
_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_PARAMS = re.compile(r"^params((?:[.\[].*)?)$")
_STEP = re.compile(r"^steps\.([^.\[\]]+)\.output((?:[.\[].*)?)$")

Segment = str | int


class ReferenceError(ValueError):
    """A reference that cannot be resolved; the message names the reference and why."""


@dataclass(frozen=True, slots=True)
class Reference:
    text: str
    """As written, without `${}`."""
    root: str
    """`params` or `steps`."""
    step: str | None
    """For `steps.<id>.output...`: the step's id."""
    path: tuple[Segment, ...]
    """Keys and indexes below `params` or below the step's output."""

    def __str__(self) -> str:
        return "${" + self.text + "}"


def parse(text: str) -> Reference:
    """One reference (the part between `${` and `}`); ValueError says what is wrong with it."""
    body = text.strip()
    params = _PARAMS.match(body)
    if params:
        return Reference(text, "params", None, _path(text, params[1]))
    step = _STEP.match(body)
    if step:
        return Reference(text, "steps", step[1], _path(text, step[2]))
    if body.startswith("steps."):
        raise ValueError(
            f"${{{text}}}: a step's result is referenced as steps.<id>.output[.<path>]"
        )
    raise ValueError(f"${{{text}}}: a reference starts with params or steps.<id>.output")


def _path(text: str, suffix: str) -> tuple[Segment, ...]:
    parts: list[Segment] = []
    at = 0
    while at < len(suffix):
        match = _SEGMENT.match(suffix, at)
        if not match:
            raise ValueError(f"${{{text}}}: cannot read the path at {suffix[at:]!r}")
        parts.append(match[1] if match[1] is not None else int(match[2]))
        at = match.end()
    return tuple(parts)


def references(value: Any) -> Iterator[tuple[tuple[Segment, ...], str]]:
    """Every `${...}` in a JSON-like value, with where it is (keys and indexes below `value`)."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield (), match[1]
    elif isinstance(value, dict):
        for key, item in value.items():
            for where, text in references(item):
                yield (key, *where), text
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for where, text in references(item):
                yield (index, *where), text


def resolve(ref: Reference, scope: dict[str, Any]) -> Any:
    """The referenced value in `{"params": ..., "steps": {id: {"output": ...}}}`."""
    if ref.root == "params":
        value, where = scope.get("params"), "params"
    else:
        assert ref.step is not None
        step = scope.get("steps", {}).get(ref.step)
        if step is None:
            raise ReferenceError(f"{ref}: step {ref.step!r} has no output yet")
        value, where = step.get("output"), f"steps.{ref.step}.output"
    for segment in ref.path:
        if isinstance(segment, int):
            if not isinstance(value, list):
                raise ReferenceError(f"{ref}: {where} is {_kind(value)}, not a list")
            if segment >= len(value):
                raise ReferenceError(
                    f"{ref}: {where} has no index {segment} (it has {len(value)} items)"
                )
            value, where = value[segment], f"{where}[{segment}]"
        else:
            if not isinstance(value, dict):
                raise ReferenceError(f"{ref}: {where} is {_kind(value)}, not an object")
            if segment not in value:
                raise ReferenceError(f"{ref}: {where} has no key {segment!r}")
            value, where = value[segment], f"{where}.{segment}"
    return value


def substitute(value: Any, scope: dict[str, Any]) -> Any:
    """`value` (any JSON-like value) with every reference filled in; ReferenceError names the
    first one that cannot be."""
    if isinstance(value, str):
        return _substitute_string(value, scope)
    if isinstance(value, dict):
        return {key: substitute(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, scope) for item in value]
    return value


def _substitute_string(text: str, scope: dict[str, Any]) -> Any:
    whole = REFERENCE.fullmatch(text)
    if whole:
        return resolve(_parsed(whole[1]), scope)

    def fill(match: re.Match[str]) -> str:
        return _format(resolve(_parsed(match[1]), scope))

    return REFERENCE.sub(fill, text)


def _parsed(text: str) -> Reference:
    try:
        return parse(text)
    except ValueError as exc:  # templates are validated, but a hand-made step may not be
        raise ReferenceError(str(exc)) from None


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
