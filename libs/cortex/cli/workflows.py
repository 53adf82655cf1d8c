"""`cortex workflows`: workflow templates, workflows made from them, and starting executions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from cortex.cli.agent_views import short
from cortex.cli.client import GatewayClient
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.execution_views import print_workflow, print_workflows
from cortex.cli.follow import follow_to_end
from cortex.cli.inputs import param_pairs, read_mapping
from cortex.cli.output import compact_json, print_fields, print_json, print_table
from cortex.cli.templates import registration

F = TypeVar("F", bound=Callable[..., Any])

param_option = click.option(
    "--param",
    "param_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; JSON when it parses (3, true, {...}), else text; text as typed where "
    "the template's params schema says the parameter is a string. Repeatable.",
)
params_file_option = click.option(
    "--params-file", metavar="FILE", help="The parameters as YAML or JSON; `-` reads stdin."
)
follow_option = click.option(
    "--follow",
    is_flag=True,
    help="Show the steps live until the execution ends; exit 1 unless it succeeded.",
)


def with_params(fn: F) -> F:
    return param_option(params_file_option(fn))


def params_from(
    client: GatewayClient,
    template: Callable[[], str],
    params_file: str | None,
    param_items: tuple[str, ...],
) -> dict[str, Any]:
    """--params-file, with each --param over it. A --param is typed by the params schema of
    the `template()` it is for (`name@version`), looked up only when there is a --param."""
    params = read_mapping(params_file, "the parameters (an object)") if params_file else {}
    if param_items:
        params.update(param_pairs(param_items, params_schema(client, template())))
    return params


def params_schema(client: GatewayClient, ref: str) -> Any:
    """The params schema of a workflow template, `name` (its latest version) or
    `name@version`; None for a version it does not have (the request itself then says so)."""
    name, _, version = ref.partition("@")
    versions = client.get(f"/api/v1/workflow-templates/{segment(name)}")["versions"]
    if not version:
        return versions[-1]["params"]
    return next((v["params"] for v in versions if v["version"] == version), None)


def template_of(client: GatewayClient, workflow_id: str) -> str:
    """The template version a workflow was made from, `name@version`."""
    workflow = client.get(f"/api/v1/workflows/{segment(workflow_id)}")
    return f"{workflow['template']}@{workflow['template_version']}"


def create_workflow(
    client: GatewayClient, template: str, params: dict[str, Any], name: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"template": template, "params": params}
    if name is not None:
        body["name"] = name
    workflow: dict[str, Any] = client.request("POST", "/api/v1/workflows", json=body)
    return workflow


def start(client: GatewayClient, workflow_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """A new execution of the workflow (running), with `params` over the workflow's."""
    path = f"/api/v1/workflows/{segment(workflow_id)}/execute"
    execution: dict[str, Any] = client.request("POST", path, json={"params": params})
    return execution


def started(client: GatewayClient, execution: dict[str, Any], follow: bool) -> None:
    """The execution's id on stdout (for scripts), or with `follow` the execution live."""
    if follow:
        follow_to_end(client, execution["id"])
        return
    click.echo(execution["id"])
    # On stderr: stdout holds only the id, for `ID=$(cortex run ...)`.
    click.echo(f"follow it with: cortex executions follow {execution['id']}", err=True)


@click.group()
def workflows() -> None:
    """Workflow templates, workflows and their executions.

    A template lists steps (agent requests, HTTP calls, state reads and writes, transforms,
    parallel groups); a workflow is a template with parameters; each execution runs it once.
    `cortex run` does create and execute in one go.
    """


@workflows.group("templates")
def workflow_templates() -> None:
    """Register and inspect workflow templates (versions are immutable once registered)."""


@workflow_templates.command("list")
@json_option
@friendly
def templates_list(as_json: bool) -> None:
    """Every workflow template, with its versions."""
    data = gateway().get("/api/v1/workflow-templates")
    if as_json:
        print_json(data)
        return
    if not data:
        click.echo("no workflow templates", err=True)
        return
    print_table(
        None,
        ["NAME", "LATEST", "VERSIONS", "DESCRIPTION"],
        [(t["name"], t["latest"], ", ".join(t["versions"]), t["description"]) for t in data],
    )


@workflow_templates.command("get")
@click.argument("name")
@json_option
@friendly
def templates_get(name: str, as_json: bool) -> None:
    """One workflow template: the latest version's parameters and steps, and every version."""
    data = gateway().get(f"/api/v1/workflow-templates/{segment(name)}")
    if as_json:
        print_json(data)
        return
    versions = data["versions"]
    latest = versions[-1]
    print_fields(
        [
            ("Name", data["name"]),
            ("Latest", latest["version"]),
            ("Description", latest.get("description")),
            ("Params", compact_json(latest["params"])),
        ]
    )
    click.echo()
    print_table(
        "Steps",
        ["STEP", "GROUP", "TYPE", "DOES", "RETRY", "TIMEOUT", "ON ERROR"],
        [
            (
                step["id"],
                group or "",
                step["type"],
                short(_does(step), 60),
                _retry(step.get("retry") or {}),
                step.get("timeout") or "",
                step.get("on_error", "fail"),
            )
            for step, group in _tasks(latest["steps"])
        ],
    )
    click.echo()
    print_table(
        "Versions",
        ["VERSION", "STEPS", "REGISTERED", "BY"],
        [
            (
                v["version"],
                sum(1 for _ in _tasks(v["steps"])),
                v["registered_at"],
                v.get("registered_by"),
            )
            for v in versions
        ],
    )


@workflow_templates.command("register")
@click.option(
    "-f",
    "--file",
    "source",
    required=True,
    metavar="FILE",
    help="The template as YAML or JSON (name, version, params, steps); `-` reads stdin.",
)
@json_option
@friendly
def templates_register(source: str, as_json: bool) -> None:
    """Register a workflow template version from a file.

    It is checked as a whole (step ids, task fields, `${...}` references, durations, the params
    schema) and every problem is named by its path. Registering the same version again with the
    same content changes nothing; with different content it is refused.
    """
    spec = read_mapping(source, "a workflow template (name, version, params, steps)")
    status, view = gateway().exchange("POST", "/api/v1/workflow-templates", json=spec)
    if as_json:
        print_json(view)
        return
    click.echo(registration("workflow template", view, status))


@workflows.command("create")
@click.argument("template")
@with_params
@click.option("--name", help="A label for people; need not be unique.")
@json_option
@friendly
def workflows_create(
    template: str,
    param_items: tuple[str, ...],
    params_file: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Create a workflow from TEMPLATE (`name` or `name@version`) and print its id.

    The parameters are --params-file with each --param over it; they are checked against the
    template's params schema now, not when the workflow runs.
    """
    client = gateway()
    params = params_from(client, lambda: template, params_file, param_items)
    workflow = create_workflow(client, template, params, name)
    if as_json:
        print_json(workflow)
        return
    click.echo(workflow["id"])
    click.echo(f"run it with: cortex workflows execute {workflow['id']}", err=True)


@workflows.command("list")
@click.option("--template", help="Only workflows of this template (name).")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="How many."
)
@json_option
@friendly
def workflows_list(template: str | None, limit: int, as_json: bool) -> None:
    """Workflows, newest first."""
    page = gateway().get("/api/v1/workflows", template=template, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        click.echo("no workflows" + (f" of template {template}" if template else ""), err=True)
        return
    print_workflows(page["items"])
    if page.get("next"):
        # On stderr: a script reading the table must not mistake this for a row.
        click.echo(f"showing the newest {len(page['items'])}; --limit shows more", err=True)


@workflows.command("get")
@click.argument("workflow_id", metavar="ID")
@json_option
@friendly
def workflows_get(workflow_id: str, as_json: bool) -> None:
    """One workflow: its template, parameters and executions."""
    workflow = gateway().get(f"/api/v1/workflows/{segment(workflow_id)}")
    if as_json:
        print_json(workflow)
        return
    print_workflow(workflow)


@workflows.command("execute")
@click.argument("workflow_id", metavar="ID")
@with_params
@follow_option
@json_option
@friendly
def workflows_execute(
    workflow_id: str,
    param_items: tuple[str, ...],
    params_file: str | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Start an execution of workflow ID and print its id.

    Parameters given here override the workflow's for this execution only. With --follow the
    steps are shown live until the execution ends, and the exit status is 0 only if it
    succeeded.
    """
    if follow and as_json:
        raise click.UsageError("--follow and --json exclude each other")
    client = gateway()
    params = params_from(client, lambda: template_of(client, workflow_id), params_file, param_items)
    execution = start(client, workflow_id, params)
    if as_json:
        print_json(execution)
        return
    started(client, execution, follow)


def _tasks(
    steps: list[dict[str, Any]], group: str | None = None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every task with the group it runs in, named as executions name it: `parallel-1` for the
    group at `steps[1]`, `parallel-1.0` for one nested at `steps[1].parallel[0]`."""
    for index, step in enumerate(steps):
        if step.get("parallel") is not None:
            name = f"{group}.{index}" if group else f"parallel-{index}"
            yield from _tasks(step["parallel"], name)
        else:
            yield step, group


def _does(step: dict[str, Any]) -> str:
    kind = step["type"]
    if kind == "agent":
        return f"agent {step['agent']}" if step.get("agent") else f"pool {step.get('pool')}"
    if kind == "http":
        return f"{step.get('method', 'GET')} {step.get('url')}"
    if kind == "state":
        return f"state {step.get('op')} of {step.get('agent')}"
    if step.get("expression") is not None:
        return str(step["expression"])
    return compact_json(step.get("output"))


def _retry(retry: dict[str, Any]) -> str:
    attempts = retry.get("attempts", 1)
    return f"{attempts} attempts, {retry.get('backoff', '1s')}" if attempts > 1 else ""
