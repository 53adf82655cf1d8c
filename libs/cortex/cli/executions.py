"""`cortex executions`: runs of workflows, their timelines, cancelling and following them."""

from __future__ import annotations

from typing import get_args

import click

from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.execution_views import print_execution, print_executions
from cortex.cli.follow import follow_to_end
from cortex.cli.output import print_json
from cortex.contracts.workflow import ExecutionStatus


@click.group()
def executions() -> None:
    """Executions of workflows: status, the timeline of their steps, cancel, follow live.

    ID is an execution's id (`cortex workflows execute` and `cortex run` print it).
    """


@executions.command("list")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only this workflow's executions.")
@click.option("--status", type=click.Choice(get_args(ExecutionStatus)))
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="How many."
)
@json_option
@friendly
def executions_list(workflow_id: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Executions, newest first. STEPS is finished steps over all steps."""
    page = gateway().get("/api/v1/executions", workflow=workflow_id, status=status, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        click.echo("no executions" + (" match" if workflow_id or status else ""), err=True)
        return
    print_executions(page["items"])
    if page.get("next"):
        # On stderr: a script reading the table must not mistake this for a row.
        click.echo(f"showing the newest {len(page['items'])}; --limit shows more", err=True)


@executions.command("get")
@click.argument("execution_id", metavar="ID")
@json_option
@friendly
def executions_get(execution_id: str, as_json: bool) -> None:
    """An execution's status and error, then the timeline of its steps.

    STARTED is counted from the execution's start; OUTPUT/ERROR is cut to one short line
    (--json has every output in full).
    """
    execution = gateway().get(f"/api/v1/executions/{segment(execution_id)}")
    if as_json:
        print_json(execution)
        return
    print_execution(execution)


@executions.command("cancel")
@click.argument("execution_id", metavar="ID")
@json_option
@friendly
def executions_cancel(execution_id: str, as_json: bool) -> None:
    """Stop a running execution: its running steps are cancelled, later ones skipped.

    An execution that has finished cannot be cancelled (exit status 1).
    """
    path = f"/api/v1/executions/{segment(execution_id)}/cancel"
    execution = gateway().request("POST", path)
    if as_json:
        print_json(execution)
        return
    click.echo(f"cancelled execution {execution['id']}: status {execution['status']}")


@executions.command("follow")
@click.argument("execution_id", metavar="ID")
@friendly
def executions_follow(execution_id: str) -> None:
    """Show an execution's steps live until it ends, then its outcome.

    The exit status is 0 if it succeeded, 1 if it failed or was cancelled (with the error).
    On a terminal the steps are a table redrawn in place; otherwise one line per event.
    """
    follow_to_end(gateway(), execution_id)
