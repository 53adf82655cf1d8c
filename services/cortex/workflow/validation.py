"""What a workflow template and its parameters must satisfy; every problem names its JSON path.

All problems are reported at once (`$.steps[1].parallel[0].agent: ...`), so that a user fixes a
template in one round rather than one error per registration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from cortex.contracts.errors import Violation
from cortex.contracts.workflow import StepSpec, WorkflowTemplateSpec
from cortex.kernel.schema_checks import check_instance, json_path, raise_problems, schema_problems

from .durations import parse_duration
from .substitution import REFERENCE, parse, references

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
STEP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
"""No dots or brackets: an id is one segment of `steps.<id>.output`."""

SUBSTITUTED = ("agent", "pool", "input", "url", "headers", "body", "value", "output")
"""The fields of a task whose `${...}` references are filled in when it runs."""


def check_template(spec: WorkflowTemplateSpec) -> None:
    """Everything about a template that its Struct's types cannot say."""
    problems = schema_problems(spec.params, "$.params")
    if not spec.steps:
        problems.append(Violation(field="$.steps", message="a workflow has at least one step"))
    problems += _Checker(spec).run()
    raise_problems(problems)


def check_params(schema: dict[str, Any], params: dict[str, Any], root: str = "$.params") -> None:
    check_instance(schema, params, root)


def _tasks(step: StepSpec) -> Iterator[StepSpec]:
    """The tasks in a step: itself, or every task of its group, nested groups included."""
    if step.parallel is None:
        yield step
        return
    for child in step.parallel:
        yield from _tasks(child)


class _Checker:
    def __init__(self, spec: WorkflowTemplateSpec) -> None:
        self.spec = spec
        self.problems: list[Violation] = []
        self.first_seen: dict[str, str] = {}
        self.all_ids = {t.id for s in spec.steps for t in _tasks(s) if t.id}

    def add(self, field: str, message: str) -> None:
        self.problems.append(Violation(field=field, message=message))

    def run(self) -> list[Violation]:
        earlier: set[str] = set()
        for index, step in enumerate(self.spec.steps):
            # Every task of one top-level step (a group runs all of its tasks at the same
            # time) sees exactly the tasks of the top-level steps before it.
            together = {t.id for t in _tasks(step) if t.id}
            self.step(step, f"$.steps[{index}]", earlier, together)
            earlier |= together
        return self.problems

    def step(self, step: StepSpec, path: str, earlier: set[str], together: set[str]) -> None:
        if step.parallel is not None:
            self.group(step, path, earlier, together)
        else:
            self.task(step, path, earlier, together)

    def group(self, step: StepSpec, path: str, earlier: set[str], together: set[str]) -> None:
        assert step.parallel is not None
        if step.type is not None:
            self.add(f"{path}.type", "a parallel group has no type (its steps have)")
        if step.id is not None:
            self.add(f"{path}.id", "a parallel group has no id (its steps have)")
        if not step.parallel:
            self.add(f"{path}.parallel", "a parallel group holds at least one step")
        for index, child in enumerate(step.parallel):
            self.step(child, f"{path}.parallel[{index}]", earlier, together)

    def task(self, step: StepSpec, path: str, earlier: set[str], together: set[str]) -> None:
        if step.id is None:
            self.add(f"{path}.id", "required field is missing")
        elif not STEP_ID.match(step.id):
            self.add(f"{path}.id", "letters, digits, '_' and '-' only (at most 63)")
        elif step.id in self.first_seen:
            self.add(
                f"{path}.id", f"step id {step.id!r} is used already at {self.first_seen[step.id]}"
            )
        else:
            self.first_seen[step.id] = f"{path}.id"
        if step.type is None:
            self.add(f"{path}.type", "required field is missing (agent, http, state or transform)")
        elif step.type == "agent":
            self.agent(step, path)
        elif step.type == "http":
            self.http(step, path)
        elif step.type == "state":
            self.state(step, path)
        else:
            self.transform(step, path)
        self.timing(step, path)
        self.references(step, path, earlier, together)

    def agent(self, step: StepSpec, path: str) -> None:
        if step.agent is None and step.pool is None:
            self.add(f"{path}.agent", "an agent step names its agent (or a pool)")
        elif step.agent is not None and step.pool is not None:
            self.add(f"{path}.pool", "an agent step names an agent or a pool, not both")

    def http(self, step: StepSpec, path: str) -> None:
        if step.url is None:
            self.add(f"{path}.url", "required field is missing")
        elif "${" not in step.url and not step.url.startswith(("http://", "https://")):
            self.add(f"{path}.url", "an http:// or https:// URL")
        if step.method.upper() not in METHODS:
            self.add(f"{path}.method", f"one of {', '.join(sorted(METHODS))}")
        for index, status in enumerate(step.expect_status or []):
            if not 100 <= status <= 599:
                self.add(f"{path}.expect_status[{index}]", "an HTTP status (100 to 599)")

    def state(self, step: StepSpec, path: str) -> None:
        if step.agent is None:
            self.add(f"{path}.agent", "a state step names the agent whose state it reads or writes")
        if step.op is None:
            self.add(f"{path}.op", "required field is missing (get, put or patch)")
        elif step.op in ("put", "patch") and step.value is None:
            self.add(f"{path}.value", f"a state {step.op} needs a value")
        elif step.op == "patch" and not (
            isinstance(step.value, dict)
            or (isinstance(step.value, str) and REFERENCE.fullmatch(step.value))
        ):
            self.add(f"{path}.value", "a merge-patch is an object")

    def transform(self, step: StepSpec, path: str) -> None:
        if step.expression is None and step.output is None:
            self.add(f"{path}.expression", "a transform has an expression or an output template")
        elif step.expression is not None and step.output is not None:
            self.add(f"{path}.output", "a transform has an expression or an output, not both")
        if step.expression is not None:
            try:
                jmespath.compile(step.expression)
            except JMESPathError as exc:
                self.add(f"{path}.expression", f"not a JMESPath expression: {exc}")

    def timing(self, step: StepSpec, path: str) -> None:
        if step.timeout is not None:
            self.duration(step.timeout, f"{path}.timeout", positive=True)
        if step.retry.attempts < 1:
            self.add(f"{path}.retry.attempts", "at least 1 (the first attempt counts)")
        self.duration(step.retry.backoff, f"{path}.retry.backoff", positive=False)
        self.duration(step.retry.max_backoff, f"{path}.retry.max_backoff", positive=False)

    def duration(self, text: str, field: str, *, positive: bool) -> None:
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            self.add(field, str(exc))
            return
        if positive and seconds <= 0:
            self.add(field, "must be more than 0")

    def references(self, step: StepSpec, path: str, earlier: set[str], together: set[str]) -> None:
        for name in SUBSTITUTED:
            for where, text in references(getattr(step, name)):
                field = json_path(f"{path}.{name}", where)
                try:
                    ref = parse(text)
                except ValueError as exc:
                    self.add(field, str(exc))
                    continue
                if ref.step is None or ref.step in earlier:
                    continue
                if ref.step == step.id:
                    self.add(field, f"{ref}: a step cannot use its own output")
                elif ref.step in together:
                    self.add(
                        field,
                        f"{ref}: step {ref.step!r} runs in the same parallel group, at the "
                        "same time; only steps before the group can be referenced",
                    )
                elif ref.step in self.all_ids:
                    self.add(field, f"{ref}: step {ref.step!r} comes later")
                else:
                    self.add(field, f"{ref}: there is no step {ref.step!r}")
