"""JSON Schema checks of user documents (agent configs, workflow params) with JSON paths.

Every service that lets users supply a JSON Schema reports problems the same way: each one
a `Violation` naming the path of the offending value (`$.params.text`), all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

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
    return []


def instance_problems(schema: dict[str, Any], instance: Any, root: str) -> list[Violation]:
    """Where `instance` (found at `root`) breaks a valid `schema`, sorted by path."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = [
        Violation(field=_field(e, root), message=e.message) for e in validator.iter_errors(instance)
    ]
    return sorted(found, key=lambda v: v.field)


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
