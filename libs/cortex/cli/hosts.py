"""`cortex hosts` and `cortex instances`: where agents run, as the registry sees it."""

from __future__ import annotations

from typing import Any, get_args

import click

from cortex.cli.agent_views import fetch_pages, print_instances
from cortex.cli.common import friendly, gateway, json_option
from cortex.cli.output import ago, human_bytes, print_json, print_table
from cortex.contracts.registry import Health

health_option = click.option("--status", type=click.Choice(get_args(Health)), help="Health.")


@click.group(invoke_without_command=True)
@health_option
@json_option
@click.pass_context
@friendly
def hosts(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """Agent hosts, their health and load.

    `cortex hosts` is short for `cortex hosts list`.
    """
    if ctx.invoked_subcommand is None:
        _list_hosts(status, as_json)


@hosts.command("list")
@health_option
@json_option
@friendly
def hosts_list(status: str | None, as_json: bool) -> None:
    """Agent hosts, their health and load."""
    _list_hosts(status, as_json)


def _list_hosts(status: str | None, as_json: bool) -> None:
    data: list[dict[str, Any]] = gateway().get("/api/v1/hosts", status=status)
    if as_json:
        print_json(data)
        return
    if not data:
        click.echo("no agent hosts" + (" match" if status else ""), err=True)
        return
    print_table(
        None,
        ["ID", "HEALTH", "REPLICAS", "CPU%", "RSS", "LAST SEEN"],
        [
            (
                h["id"],
                h["health"],
                _replicas(h),
                f"{h['cpu_percent']:.1f}",
                human_bytes(h["rss_bytes"]),
                ago(h.get("last_seen")),
            )
            for h in data
        ],
    )


def _replicas(host: dict[str, Any]) -> str:
    capacity = host.get("capacity") or 0
    return f"{host['replicas']}/{capacity}" if capacity else str(host["replicas"])


@click.command("instances")
@click.option("--agent", metavar="REF", help="An agent's id or name.")
@click.option("--host", metavar="HOST", help="A host id.")
@health_option
@click.option(
    "--limit", type=click.IntRange(1, 5000), default=1000, show_default=True, help="Page size."
)
@click.option("--all", "everything", is_flag=True, help="Follow every page, not just the first.")
@json_option
@friendly
def instances(
    agent: str | None,
    host: str | None,
    status: str | None,
    limit: int,
    everything: bool,
    as_json: bool,
) -> None:
    """Agent instances (running replicas).

    Ordered by id, across agents and hosts.
    """
    params = {"agent": agent, "host": host, "status": status, "limit": limit}
    page = fetch_pages(gateway(), "/api/v1/instances", params, everything)
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        click.echo("no instances" + (" match" if agent or host or status else ""), err=True)
        return
    print_instances(page["items"], with_agent=True)
    if page.get("next"):
        click.echo(f"showing the first {len(page['items'])}; --all lists every one", err=True)
