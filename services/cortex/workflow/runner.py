"""Running one execution: walk the template's steps, record every transition, retry, time out.

A list of steps runs in order; a `parallel` group runs its steps at the same time and is done
when all are (a step that fails for good, with `on_error: fail`, fails the group: the others are
cancelled). The runner starts from the execution's recorded state, so it also resumes after a
restart: a step that succeeded is not run again (its output is in its event), a step that was
started but did not finish runs again, its attempt count going on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec
from opentelemetry.trace import Span, StatusCode

from cortex.contracts.workflow import (
    ExecutionFailed,
    ExecutionSucceeded,
    StepFailed,
    StepRetrying,
    StepSpec,
    StepStarted,
    StepSucceeded,
    WorkflowTemplateSpec,
)
from cortex.kernel.context import bound
from cortex.kernel.errors import CortexError
from cortex.kernel.logging import get_logger
from cortex.kernel.store import ConcurrencyError
from cortex.kernel.tracing import span

from .domain import StepState
from .durations import backoff_delay, parse_duration, step_timeout
from .journal import Journal
from .metrics import EXECUTIONS, STEP_DURATION, STEP_RETRIES
from .steps import Scope, StepError, Tasks

log = get_logger()

"""Seconds an attempt may take when its step says nothing."""
OUTPUT_LIMIT = 512 * 1024
"""Largest step output, JSON-encoded: outputs are kept in events, and events travel over NATS
(1 MB per message by default)."""

Sleep = Callable[[float], Any]


class StepFailure(Exception):
    """A step failed for good and its `on_error` is `fail`: the execution fails."""

    def __init__(self, step_id: str, attempts: int, error: str) -> None:
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"step {step_id} failed after {attempts} {plural}: {error}")
        self.step_id = step_id


class Runner:
    def __init__(
        self,
        execution_id: str,
        template: WorkflowTemplateSpec,
        journal: Journal,
        tasks: Tasks,
        *,
        rng: random.Random | None = None,
    ) -> None:
        started = journal.state.started
        assert started is not None
        self.execution_id = execution_id
        self.template = template
        self.journal = journal
        self.tasks = tasks
        self.rng = rng or random.Random()
        self.scope = Scope(execution_id, started.params)
        self.log = log.bind(execution_id=execution_id)
        # Outputs of steps that finished before a restart come from their events.
        for step_id, step in journal.state.steps.items():
            if step.status in ("succeeded", "failed"):
                self.scope.outputs[step_id] = step.output

    async def run(self) -> None:
        """Run to the end and record it; returns early (recording nothing more) when another
        writer took the stream, and lets cancellation through (the caller's doing).

        The run is one span, a child of the span it was launched in (the `workflow.execute`
        request's; an execution resumed after a restart begins a trace of its own), with a
        span per step beneath it, and everything it does is bound to the execution's
        correlation id and id."""
        with (
            span(
                f"execution {self.template.name}",
                attributes={
                    "cortex.execution_id": self.execution_id,
                    "cortex.workflow.template": self.template.name,
                    "cortex.workflow.template_version": self.template.version,
                },
            ) as current,
            bound(self.journal.correlation_id, execution_id=self.execution_id),
        ):
            try:
                try:
                    await self._sequence(self.template.steps)
                except StepFailure as failure:
                    current.set_status(StatusCode.ERROR, str(failure))
                    await self.journal.record(
                        ExecutionFailed(error=str(failure), step_id=failure.step_id)
                    )
                    EXECUTIONS.labels("failed").inc()
                    self.log.info("execution failed", error=str(failure))
                    return
                await self.journal.record(ExecutionSucceeded())
                EXECUTIONS.labels("succeeded").inc()
                self.log.info("execution succeeded")
            except ConcurrencyError as exc:
                # A cancel, or another runner after our lease lapsed: the stream is theirs now.
                self.log.info("execution taken over; runner stops", reason=exc.message)
            finally:
                await self.journal.settle()

    async def _sequence(self, steps: list[StepSpec]) -> None:
        for step in steps:
            await self._step(step)

    async def _step(self, step: StepSpec) -> None:
        if step.parallel is None:
            await self._task(step)
            return
        # The group's steps are siblings under the execution's span: a group does nothing of
        # its own that a span would time.
        try:
            async with asyncio.TaskGroup() as group:
                for child in step.parallel:
                    group.create_task(self._step(child))
        except BaseExceptionGroup as errors:
            raise _first(errors) from None

    async def _task(self, step: StepSpec) -> None:
        assert step.id is not None
        assert step.type is not None
        state = self.journal.state.step(step.id)
        if state.status == "succeeded" or (
            state.status == "failed" and step.on_error == "continue"
        ):
            return
        if state.status == "failed":  # failed for good before a restart, on_error fail
            raise StepFailure(step.id, state.failures, state.error or "failed")
        with (
            span(
                f"step {step.id}",
                attributes={
                    "cortex.workflow.step": step.id,
                    "cortex.workflow.step_type": step.type,
                },
            ) as current,
            bound(step=step.id),
        ):
            await self._attempts(step, state, current)

    async def _attempts(self, step: StepSpec, state: StepState, current: Span) -> None:
        """Attempt the step until it succeeds or fails for good; each failed attempt is an
        event of the step's span."""
        assert step.id is not None
        attempts = max(1, step.retry.attempts)
        timeout = step_timeout(step)
        attempt, failures = state.attempt, state.failures
        # Interrupted by a restart (started, or between attempts): run it again now.
        resumed = state.status in ("running", "retrying")
        while True:
            attempt += 1
            if failures or resumed:
                delay = 0.0 if resumed else self._backoff(step, failures)
                await self.journal.record(
                    StepRetrying(step_id=step.id, attempt=attempt, delay=delay)
                )
                if failures and not resumed:  # not a start again after a restart
                    STEP_RETRIES.labels(step.type).inc()
                if delay:
                    await asyncio.sleep(delay)
            resumed = False
            await self.journal.record(StepStarted(step_id=step.id, attempt=attempt))
            began = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    output = await self.tasks.run(step, self.scope)
                size = len(msgspec.json.encode(output))
                if size > OUTPUT_LIMIT:
                    raise StepError(
                        f"output of {size} bytes is over the {OUTPUT_LIMIT} byte limit",
                        permanent=True,
                    )
            except Exception as exc:
                STEP_DURATION.labels(step.type).observe(time.perf_counter() - began)
                failures += 1
                error = _describe(exc, timeout)
                final = failures >= attempts or (isinstance(exc, StepError) and exc.permanent)
                current.add_event("attempt failed", {"attempt": attempt, "error": error})
                await self.journal.record(
                    StepFailed(step_id=step.id, attempt=attempt, error=error, final=final)
                )
                # Found by the execution's id in the central logs (`step` is bound above).
                self.log.warning("step attempt failed", attempt=attempt, error=error, final=final)
                if not final:
                    continue
                current.set_status(StatusCode.ERROR, error)
                if step.on_error == "continue":
                    self.scope.outputs[step.id] = None
                    return
                raise StepFailure(step.id, failures, error) from None
            STEP_DURATION.labels(step.type).observe(time.perf_counter() - began)
            await self.journal.record(
                StepSucceeded(step_id=step.id, attempt=attempt, output=output)
            )
            self.scope.outputs[step.id] = output
            return

    def _backoff(self, step: StepSpec, failures: int) -> float:
        backoff = parse_duration(step.retry.backoff)
        ceiling = parse_duration(step.retry.max_backoff)
        return round(backoff_delay(failures, backoff, ceiling, self.rng), 3)


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, StepError | CortexError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _first(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """What a failed parallel group amounts to: a lost stream stops the runner whatever else
    happened; otherwise the first step that failed for good."""
    leaves: list[BaseException] = []

    def flatten(group: BaseExceptionGroup[BaseException]) -> None:
        for error in group.exceptions:
            if isinstance(error, BaseExceptionGroup):
                flatten(error)
            else:
                leaves.append(error)

    flatten(errors)
    for kind in (ConcurrencyError, StepFailure):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return errors
