"""Checks a template or a config must pass; each violation names its JSON path."""

from __future__ import annotations

import re
from typing import Any

from cortex.contracts.errors import Violation
from cortex.contracts.lifecycle import TemplateSpec
from cortex.kernel.handlers import refusal
from cortex.kernel.schema_checks import (
    check_instance,
    instance_problems,
    raise_problems,
    schema_problems,
)
from cortex.kernel.secrets import field_name, has_path, secret_paths

_TOPIC = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def check_template(spec: TemplateSpec, agent_path: str = "", agent_modules: str = "") -> None:
    """Everything about a template that its Struct's types cannot say; `agent_path` and
    `agent_modules` are the settings that say where handlers may come from."""
    problems: list[Violation] = []
    if not spec.handler:
        where = "" if spec.runtime == "host" else " (in its image)"
        problems.append(
            Violation(
                field="$.handler",
                message=f"a template with runtime `{spec.runtime}` names its agent class{where}",
            )
        )
    # A `kubernetes` agent's code is its image's: the image is what is trusted, not a path.
    if (
        spec.runtime == "host"
        and spec.handler
        and (why := refusal(spec.handler, agent_path, agent_modules))
    ):
        problems.append(Violation(field="$.handler", message=why))
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
    broken_schema = schema_problems(spec.config_schema, "$.config_schema")
    problems += broken_schema or instance_problems(
        spec.config_schema, spec.default_config, "$.default_config"
    )
    if not broken_schema:
        problems += [
            Violation(
                field=field_name(path, "$.default_config"),
                message="a secret field (`writeOnly`) has no default: a template is stored "
                "in clear, so give its value to each agent",
            )
            for path in secret_paths(spec.config_schema)
            if has_path(spec.default_config, path)
        ]
    raise_problems(problems)


def check_config(schema: dict[str, Any], config: dict[str, Any], root: str = "$.config") -> None:
    check_instance(schema, config, root)
