"""Checks a template or a config must pass; each violation names its JSON path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from cortex.contracts.errors import Violation
from cortex.contracts.lifecycle import TemplateSpec
from cortex.kernel.errors import Invalid

_TOPIC = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def json_path(root: str, parts: Iterable[Any]) -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _violations(errors: Iterable[ValidationError], root: str) -> list[Violation]:
    found = [Violation(field=json_path(root, e.absolute_path), message=e.message) for e in errors]
    return sorted(found, key=lambda v: v.field)


def check_template(spec: TemplateSpec) -> None:
    """Everything about a template that its Struct's types cannot say."""
    problems: list[Violation] = []
    if spec.runtime == "host" and not spec.handler:
        problems.append(
            Violation(
                field="$.handler", message="a template with runtime `host` names its agent class"
            )
        )
    if spec.runtime == "kubernetes" and not spec.image:
        problems.append(
            Violation(
                field="$.image", message="a template with runtime `kubernetes` names an image"
            )
        )
    for i, topic in enumerate(spec.topics):
        if not _TOPIC.match(topic):
            problems.append(
                Violation(field=f"$.topics[{i}]", message="letters, digits, '-', '_' and dots only")
            )
    try:
        validator_class = jsonschema.validators.validator_for(spec.config_schema)
        validator_class.check_schema(spec.config_schema)
    except SchemaError as exc:
        problems.append(
            Violation(
                field=json_path("$.config_schema", exc.absolute_path),
                message=f"not a valid JSON Schema: {exc.message}",
            )
        )
    else:
        validator = validator_class(spec.config_schema)
        problems += _violations(validator.iter_errors(spec.default_config), "$.default_config")
    if problems:
        raise Invalid(_summary(problems), violations=problems)


def check_config(schema: dict[str, Any], config: dict[str, Any], root: str = "$.config") -> None:
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = _violations(validator.iter_errors(config), root)
    if problems:
        raise Invalid(_summary(problems), violations=problems)


def _summary(problems: list[Violation]) -> str:
    first = f"{problems[0].field}: {problems[0].message}"
    return first if len(problems) == 1 else f"{first} (and {len(problems) - 1} more)"
