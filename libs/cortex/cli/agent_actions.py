"""`cortex agents deploy | scale | delete`: change what runs."""

from __future__ import annotations

import sys

import click

from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.output import print_json
from cortex.kernel.serving import SERVING


@click.command("deploy")
@click.argument("ref")
@click.option("--replicas", type=click.IntRange(0, 10_000), help="Default: the agent's.")
@json_option
@friendly
def deploy(ref: str, replicas: int | None, as_json: bool) -> None:
    """Start the replicas of a created, terminated or failed agent."""
    body = {} if replicas is None else {"replicas": replicas}
    agent = gateway().request("POST", f"/api/v1/agents/{segment(ref)}/deploy", json=body)
    if as_json:
        print_json(agent)
        return
    name = agent["name"]
    click.echo(f"deploying agent {name}: {agent['replicas']} replica(s), status {agent['status']}")
    click.echo(f"watch them start with: cortex agents get {name}")


@click.command("scale")
@click.argument("ref")
@click.argument("replicas", type=click.IntRange(0, 10_000))
@click.option("--dry-run", is_flag=True, help="Show what would be started and stopped.")
@json_option
@friendly
def scale(ref: str, replicas: int, dry_run: bool, as_json: bool) -> None:
    """Set the number of replicas of an agent."""
    plan = gateway().request(
        "POST",
        f"/api/v1/agents/{segment(ref)}/scale",
        json={"replicas": replicas},
        params={"dry_run": "true"} if dry_run else {},
    )
    if as_json:
        print_json(plan)
        return
    agent = plan["agent"]
    change = f"{plan['add']} to start, {plan['remove']} to stop"
    if agent["status"] not in SERVING:
        # Nothing runs, so nothing starts or stops now: the number applies at the next deploy.
        change = f"nothing runs while it is {agent['status']}; deploy starts {replicas}"
    if dry_run:
        click.echo(f"dry run: agent {agent['name']} would have {replicas} replica(s): {change}")
        click.echo("nothing changed")
    else:
        click.echo(f"scaling agent {agent['name']} to {replicas} replica(s): {change}")


@click.command("delete")
@click.argument("ref")
@click.option(
    "--grace",
    type=click.FloatRange(0, 86_400),
    metavar="SECONDS",
    help="Time each replica gets to finish its messages. Default: the template's stop_grace.",
)
@click.option("--purge", is_flag=True, help="Also remove the agent for good and free its name.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before purging.")
@json_option
@friendly
def delete(ref: str, grace: float | None, purge: bool, yes: bool, as_json: bool) -> None:
    """Terminate an agent (--purge: remove it for good).

    Termination is graceful; the agent stays listed (terminated) and can be deployed again. With
    --purge the agent, its config and its name are gone: asks first on a terminal.
    """
    # A script (stdin not a terminal) cannot answer; asking would hang or read its input.
    if purge and not yes and sys.stdin.isatty():
        question = f"purge agent {ref}? It cannot be deployed again and its name becomes free"
        if not click.confirm(question, default=False, err=True):
            raise CliError("not purged; nothing changed")
    params: dict[str, object] = {"grace": grace}
    if purge:
        params["purge"] = "true"
    agent = gateway().request(
        "DELETE",
        f"/api/v1/agents/{segment(ref)}",
        params={k: v for k, v in params.items() if v is not None},
    )
    if as_json:
        print_json(agent)
        return
    name = agent["name"]
    if purge:
        click.echo(f"purged agent {name}: its replicas stop and the name {name} is free")
    else:
        click.echo(f"terminating agent {name}: status {agent['status']}")
        click.echo(f"bring it back with: cortex agents deploy {name}")
