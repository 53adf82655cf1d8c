"""How workflows and their executions read in a terminal: the step timeline, durations and the
result; shared by `cortex workflows`, `cortex executions`, `cortex run` and live following."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.text import Text

from cortex.cli.agent_views import short
from cortex.cli.output import age, ago, compact_json, parse_time, print_fields, print_table

Execution = dict[str, Any]
Step = dict[str, Any]

TIMELINE = ["STEP", "GROUP", "STATUS", "ATTEMPTS", "STARTED", "DURATION", "OUTPUT/ERROR"]

FINISHED_STEP = ("succeeded", "failed", "cancelled", "skipped")
UNDERWAY = ("running", "retrying")

STYLES = {
    "pending": "dim",
    "running": "yellow",
    "retrying": "yellow",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "skipped": "dim",
}


def template_ref(item: dict[str, Any]) -> str:
    return f"{item['template']}@{item['template_version']}"


def seconds(start: str | None, end: str | None, now: datetime | None = None) -> float | None:
    """From `start` to `end` (or to `now` while there is no end), or None if not started."""
    began = parse_time(start)
    ended = parse_time(end) or now
    if began is None or ended is None:
        return None
    return max(0.0, (ended - began).total_seconds())


def duration(value: float | None) -> str:
    """`0.35s`, `12.4s`, `3m05s`, `2h10m`: as precise as a step's length is worth reading."""
    if value is None:
        return ""
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def offset(execution: Execution, at: str | None) -> str:
    """`+1.20s`: when something happened, counted from the execution's start (a timeline reads
    better as offsets than as wall-clock times that differ in their last digits)."""
    value = seconds(execution["started_at"], at)
    return "" if value is None else f"+{duration(value)}"


def outcome(step: Step, width: int = 60) -> str:
    """The error of a step that has one, else the output of one that succeeded, on one line."""
    if step.get("error"):
        return short(step["error"], width)
    if step["status"] == "succeeded":
        return short(compact_json(step.get("output")), width)
    return ""


def status_cell(status: str, styled: bool) -> str | Text:
    return Text(status, style=STYLES.get(status, "")) if styled else status


def timeline_rows(
    execution: Execution, *, now: datetime | None = None, styled: bool = False
) -> list[list[Any]]:
    """One row per step, in template order. With `now`, a step under way shows how long it
    has run so far."""
    rows: list[list[Any]] = []
    for step in execution["steps"]:
        clock = now if step["status"] in UNDERWAY else None
        rows.append(
            [
                step["id"],
                step.get("parent") or "",
                status_cell(step["status"], styled),
                step.get("attempts") or "",
                offset(execution, step.get("started_at")),
                duration(seconds(step.get("started_at"), step.get("finished_at"), clock)),
                outcome(step),
            ]
        )
    return rows


def steps_done(execution: Execution) -> str:
    done = sum(1 for s in execution["steps"] if s["status"] in FINISHED_STEP)
    return f"{done}/{len(execution['steps'])}"


def execution_duration(execution: Execution, now: datetime | None = None) -> str:
    return duration(seconds(execution["started_at"], execution.get("finished_at"), now))


def result(execution: Execution) -> tuple[str, Any] | None:
    """The workflow's answer: the output of its last step, when that step is a task of its own
    (the last of a parallel group is no more the answer than its siblings) and succeeded."""
    if not execution["steps"]:
        return None
    last = execution["steps"][-1]
    if last.get("parent") or last["status"] != "succeeded":
        return None
    return last["id"], last.get("output")


def print_execution(execution: Execution) -> None:
    fields: list[tuple[str, Any]] = [
        ("ID", execution["id"]),
        ("Workflow", execution["workflow_id"]),
        ("Template", template_ref(execution)),
        ("Status", execution["status"]),
    ]
    if execution.get("error"):
        fields.append(("Error", execution["error"]))
    fields += [
        ("Params", compact_json(execution["params"])),
        ("Started", f"{execution['started_at']} ({ago(execution['started_at'])})"),
    ]
    if execution.get("finished_at"):
        fields.append(("Finished", execution["finished_at"]))
    fields.append(("Duration", execution_duration(execution)))
    print_fields(fields)
    click.echo()
    print_table("Timeline", TIMELINE, timeline_rows(execution))


def print_executions(items: list[Execution]) -> None:
    print_table(
        None,
        ["ID", "WORKFLOW", "TEMPLATE", "STATUS", "STEPS", "STARTED", "DURATION"],
        [
            (
                e["id"],
                e["workflow_id"],
                template_ref(e),
                e["status"],
                steps_done(e),
                age(e["started_at"]),
                execution_duration(e),
            )
            for e in items
        ],
    )


def print_workflows(items: list[dict[str, Any]]) -> None:
    print_table(
        None,
        ["ID", "NAME", "TEMPLATE", "EXECUTIONS", "LAST EXECUTION", "AGE", "PARAMS"],
        [
            (
                w["id"],
                w.get("name"),
                template_ref(w),
                w.get("executions", 0),
                w.get("last_execution"),
                age(w["created_at"]),
                short(compact_json(w["params"]), 40),
            )
            for w in items
        ],
    )


def print_workflow(workflow: dict[str, Any]) -> None:
    print_fields(
        [
            ("ID", workflow["id"]),
            ("Name", workflow.get("name")),
            ("Template", template_ref(workflow)),
            ("Params", compact_json(workflow["params"])),
            ("Created", f"{workflow['created_at']} ({ago(workflow['created_at'])})"),
            ("Executions", workflow.get("executions", 0)),
            ("Last execution", workflow.get("last_execution")),
        ]
    )
