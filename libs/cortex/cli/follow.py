"""`--follow`: an execution's live events (the gateway's server-sent events), shown as they
arrive, then its outcome as the exit status.

The stream opens with an `execution` event (the whole execution now); each workflow event
(`step.started`, `step.succeeded`, ...) follows with an `execution` event of the refreshed
view, until the execution has finished. On a terminal a table of the steps is redrawn in
place; otherwise each event is one line, so that logs and pipes get a readable record.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from cortex.cli.agent_views import short
from cortex.cli.client import CliError, GatewayClient, GatewayUnreachable
from cortex.cli.common import segment
from cortex.cli.execution_views import (
    STYLES,
    TIMELINE,
    Execution,
    execution_duration,
    offset,
    outcome,
    result,
    steps_done,
    template_ref,
    timeline_rows,
)
from cortex.cli.output import compact_json, print_json, table

RECONNECT_FOR = 60.0
"""Seconds to keep reconnecting a lost stream (a gateway or workflow service restarting) before
giving up; the execution itself goes on either way."""
TRANSIENT = (502, 503, 504)
"""Answers that say "not now" (a service restarting) rather than "no"."""

STATUS_AFTER = {
    "step.started": "running",
    "step.succeeded": "succeeded",
    "step.retrying": "retrying",
}
"""A step's status once an event of this type is folded in (`step.failed` depends on `final`)."""


class Progress(Protocol):
    def view(self, execution: Execution, *, fresh: bool) -> None:
        """The execution as it stands; `fresh`: the first view of a (re)connected stream."""

    def event(self, kind: str, envelope: dict[str, Any]) -> None: ...

    def notice(self, text: str) -> None: ...


def follow(client: GatewayClient, execution_id: str, progress: Progress) -> Execution:
    """Follows the execution until it has finished and returns it as it ended.

    A lost stream is reconnected: the new stream starts with the execution as it is then, so
    nothing is missed but the individual events of the gap."""
    path = f"/api/v1/executions/{segment(execution_id)}/events"
    failing_since: float | None = None
    told = ""
    while True:
        try:
            with contextlib.closing(client.events(path)) as stream:
                fresh = True
                for message in stream:
                    failing_since, told = None, ""
                    if message.event == "execution":
                        execution: Execution = json.loads(message.data)
                        progress.view(execution, fresh=fresh)
                        fresh = False
                        if execution["status"] != "running":
                            return execution
                    elif message.data:
                        progress.event(message.event, json.loads(message.data))
            problem = "the gateway ended the stream early"
        except GatewayUnreachable as exc:
            problem = str(exc)
        except CliError as exc:
            if exc.status not in TRANSIENT:
                raise
            problem = str(exc)
        failing_since = failing_since or time.monotonic()
        if time.monotonic() - failing_since > RECONNECT_FOR:
            raise CliError(
                f"lost the events of execution {execution_id}: {problem}; the execution goes "
                f"on (see it with: cortex executions get {execution_id})"
            )
        if problem != told:  # once per kind of trouble, not once a second
            progress.notice(f"{problem}; reconnecting")
            told = problem
        time.sleep(1.0)


class PlainProgress:
    """One line per event: `+0.35s  draft  succeeded  {...}`."""

    def __init__(self) -> None:
        self.execution: Execution | None = None
        self.known: dict[str, str] = {}
        """Each step's status as already printed: a reconnect prints only what changed."""
        self.width = 0

    def view(self, execution: Execution, *, fresh: bool) -> None:
        if self.execution is None:
            self.width = max((len(s["id"]) for s in execution["steps"]), default=0)
            click.echo(
                f"execution {execution['id']} of {template_ref(execution)}: {execution['status']}"
            )
        self.execution = execution
        # Within a stream every change arrives as an event; the first view of a stream (and
        # the last, which settles unfinished steps) also holds changes no event was seen for.
        if fresh or execution["status"] != "running":
            self._catch_up(execution)

    def _catch_up(self, execution: Execution) -> None:
        changed = [
            s for s in execution["steps"] if self.known.get(s["id"], "pending") != s["status"]
        ]
        # In the order it happened; steps that never ran (skipped) come last.
        changed.sort(key=lambda s: (_when(s) is None, _when(s) or ""))
        for step in changed:
            self.known[step["id"]] = step["status"]
            status, attempts = step["status"], step.get("attempts") or 1
            if status == "retrying":
                text = f"retrying (attempt {attempts} failed)"
            elif status in ("running", "failed") and attempts > 1:
                text = f"{status} (attempt {attempts})"
            else:
                text = status
            detail = outcome(step, 100)
            at = offset(execution, _when(step))
            self._line(at, step["id"], f"{text}  {detail}" if detail else text)

    def event(self, kind: str, envelope: dict[str, Any]) -> None:
        if self.execution is None:
            return
        data = envelope.get("data") or {}
        step = str(data.get("step_id") or "")
        attempt = data.get("attempt") or 1
        at = offset(self.execution, envelope.get("occurred_at"))
        if kind.startswith("execution."):
            return  # the outcome, with its error, is printed once the stream ends
        if kind == "step.started":
            text = "started" if attempt == 1 else f"started (attempt {attempt})"
        elif kind == "step.succeeded":
            text = f"succeeded  {short(compact_json(data.get('output')), 100)}"
        elif kind == "step.failed":
            final = bool(data.get("final"))
            text = f"failed (attempt {attempt}{'' if final else ', will retry'}): "
            text += short(str(data.get("error")), 200)
            self.known[step] = "failed" if final else "retrying"
        elif kind == "step.retrying":
            text = f"retrying in {float(data.get('delay') or 0):.1f}s (attempt {attempt} next)"
        else:
            text = kind
        if kind in STATUS_AFTER:
            self.known[step] = STATUS_AFTER[kind]
        self._line(at, step, text)

    def notice(self, text: str) -> None:
        click.echo(text, err=True)

    def _line(self, at: str, step: str, text: str) -> None:
        click.echo(f"{at:>8}  {step:<{self.width}}  {text}")


def _when(step: dict[str, Any]) -> str | None:
    return step.get("finished_at") or step.get("started_at")


class LiveProgress:
    """A table of the steps, redrawn in place as events arrive (and four times a second, so
    that the durations of running steps tick)."""

    def __init__(self, console: Console) -> None:
        self.execution: Execution | None = None
        self.note = ""
        self.live = Live(
            console=console, refresh_per_second=4, get_renderable=self.render, transient=False
        )

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.live.stop()

    def view(self, execution: Execution, *, fresh: bool) -> None:
        self.execution = execution
        self.note = ""
        self.live.refresh()

    def event(self, kind: str, envelope: dict[str, Any]) -> None:
        """Nothing to draw: the refreshed view follows every event."""

    def notice(self, text: str) -> None:
        self.note = text
        self.live.refresh()

    def render(self) -> RenderableType:
        if self.execution is None:
            return Text("waiting for the execution's events…", style="dim")
        execution = self.execution
        now = datetime.now(UTC)
        status = execution["status"]
        # Status first: on a narrow terminal the line is cut at its end, where the id is.
        header = Text.assemble(
            (status, STYLES.get(status, "")),
            f"  {steps_done(execution)} steps done  {execution_duration(execution, now)}  "
            f"{template_ref(execution)}  execution {execution['id']}",
            no_wrap=True,
            overflow="ellipsis",
        )
        rows = timeline_rows(execution, now=now, styled=True)
        # One line per step, however long its output, so that the redrawn table keeps its
        # height: the output is cut to the room the other (unwrappable) columns leave it.
        for row in rows:
            row[-1] = Text(row[-1], no_wrap=True, overflow="ellipsis")
        steps = table(None, TIMELINE, rows)
        for column in steps.columns[:-1]:
            column.no_wrap = True
        parts: list[RenderableType] = [header, steps]
        if self.note:
            parts.append(Text(self.note, style="yellow"))
        return Group(*parts)


def follow_to_end(client: GatewayClient, execution_id: str) -> None:
    """Follows the execution live, prints its outcome, and exits 1 unless it succeeded."""
    try:
        if sys.stdout.isatty():
            with LiveProgress(Console()) as live:
                execution = follow(client, execution_id, live)
        else:
            execution = follow(client, execution_id, PlainProgress())
    except KeyboardInterrupt:
        raise CliError(
            f"stopped following; execution {execution_id} goes on "
            f"(cortex executions follow {execution_id})",
            exit_code=130,
        ) from None
    finish(execution)


def finish(execution: Execution) -> None:
    """The outcome: `succeeded in 1.23s` and the result, or the error as the `error:` line."""
    status = execution["status"]
    click.echo(f"execution {execution['id']} {status} in {execution_duration(execution)}")
    if status == "failed":
        raise CliError(execution.get("error") or f"execution {execution['id']} failed")
    if status == "cancelled":
        # The reason reads `cancelled by api:admin` (or says something else entirely).
        reason = execution.get("error") or "cancelled"
        said = reason if reason.startswith("cancelled") else f"cancelled ({reason})"
        raise CliError(f"execution {execution['id']} was {said}")
    answer = result(execution)
    if answer is not None:
        click.echo(f"result of step {answer[0]}:")
        print_json(answer[1])
