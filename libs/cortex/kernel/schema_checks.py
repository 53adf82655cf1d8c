"""JSON Schema checks of user documents (agent configs, workflow params) with JSON paths.

Every service that lets users supply a JSON Schema reports problems the same way: each one
a `Violation` naming the path of the offending value (`$.params.text`), all of them at once.

Patterns (`pattern`, `patternProperties`, and the `additionalProperties` that depend on them)
run on RE2, whose time is linear in the input: with Python's backtracking `re`, as jsonschema
runs them, `^(a+)+$` against forty `a`s and a `!` holds the event loop of the service checking
it for good. A schema whose patterns RE2 cannot run (lookaround, backreferences) is refused
when it is registered.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema
import re2
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from cortex.contracts.errors import Violation
from cortex.kernel.errors import Invalid


def json_path(root: str, parts: Iterable[Any]) -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_problems(schema: dict[str, Any], root: str) -> list[Violation]:
    """Why `schema` (found at `root`) is not a valid JSON Schema; empty when it is."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [
            Violation(
                field=json_path(root, exc.absolute_path),
                message=f"not a valid JSON Schema: {exc.message}",
            )
        ]
    return list(_pattern_problems(schema, root, []))


def _pattern_problems(node: Any, root: str, path: list[Any]) -> Iterator[Violation]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _pattern_problems(item, root, [*path, index])
        return
    if not isinstance(node, dict):
        return
    patterns = []
    if isinstance(node.get("pattern"), str):
        patterns.append((node["pattern"], [*path, "pattern"]))
    if isinstance(node.get("patternProperties"), dict):
        patterns += [(p, [*path, "patternProperties", p]) for p in node["patternProperties"]]
        if _anywhere(node, "unevaluatedProperties"):
            # jsonschema matches patternProperties with Python's `re` to find what they
            # evaluated; refusing the pair keeps every pattern on RE2.
            yield Violation(
                field=json_path(root, [*path, "patternProperties"]),
                message="patternProperties cannot be combined with unevaluatedProperties",
            )
    for pattern, where in patterns:
        try:
            _compiled(pattern)
        except re2.error as exc:
            yield Violation(
                field=json_path(root, where),
                message=(
                    f"{pattern!r} is not a pattern the platform can run ({exc}); patterns run "
                    "on RE2, in linear time: no lookaround or backreferences"
                ),
            )
    for key, value in node.items():
        if key not in ("pattern", "const", "enum", "default", "examples"):
            yield from _pattern_problems(value, root, [*path, key])


def _anywhere(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        return key in node or any(_anywhere(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_anywhere(v, key) for v in node)
    return False


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in known and not any(_search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        if patterns:
            regexes = ", ".join(repr(pattern) for pattern in sorted(patterns))
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{listed} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({listed} {verb} unexpected)"
            )


@functools.cache
def _linear(cls: type[Validator]) -> Any:
    """`cls` (the validator of the schema's draft) with its pattern keywords on RE2."""
    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        cls, {k: v for k, v in keywords.items() if k in cls.VALIDATORS}
    )


def instance_problems(schema: dict[str, Any], instance: Any, root: str) -> list[Violation]:
    """Where `instance` (found at `root`) breaks a valid `schema`, sorted by path."""
    validator = _linear(jsonschema.validators.validator_for(schema))(schema)
    found = [
        Violation(field=_field(e, root), message=_message(e))
        for e in validator.iter_errors(instance)
    ]
    return sorted(found, key=lambda v: v.field)


def _message(error: ValidationError) -> str:
    """jsonschema's message repeats the value (`'sk-1' is too short`): not for a secret field
    (`writeOnly`), whose value must not come back in a response or a log line."""
    if isinstance(error.schema, dict) and error.schema.get("writeOnly") is True:
        return (
            f"does not satisfy `{error.validator}` ({error.validator_value!r}); the value is "
            "secret, so it is not repeated"
        )
    return error.message


def check_instance(schema: dict[str, Any], instance: Any, root: str) -> None:
    raise_problems(instance_problems(schema, instance, root))


def raise_problems(problems: list[Violation]) -> None:
    """Raise one `Invalid` carrying every problem, its message naming the first."""
    if not problems:
        return
    first = f"{problems[0].field}: {problems[0].message}"
    message = first if len(problems) == 1 else f"{first} (and {len(problems) - 1} more)"
    raise Invalid(message, violations=problems)


def _field(error: ValidationError, root: str) -> str:
    # A missing property is named by its own path, not its parent's: the user is told
    # which field to add.
    path = list(error.absolute_path)
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [
            name
            for name in (required if isinstance(required, list) else [])
            if name not in error.instance and repr(name) in error.message
        ]
        if missing:
            path.append(missing[0])
    return json_path(root, path)
