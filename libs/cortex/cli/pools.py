"""`cortex pools` (named groups of agents) and `cortex discover` (an agent's healthy instances
and how to reach them)."""

from __future__ import annotations

from typing import Any, get_args

import click

from cortex.cli.agent_views import labels_text, print_agents
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.inputs import label_pairs
from cortex.cli.output import age, ago, print_fields, print_json, print_table
from cortex.contracts.discovery import Pick


@click.group()
def pools() -> None:
    """Create, inspect and delete pools.

    A pool is a named group of agents, e.g. per team or workload; an agent joins one when it is
    created (`pool:` in `cortex agents create -f`). A pool can be deleted once it is empty.
    """


@pools.command("list")
@json_option
@friendly
def pools_list(as_json: bool) -> None:
    """Every pool, with how many agents it holds."""
    data: list[dict[str, Any]] = gateway().get("/api/v1/pools")
    if as_json:
        print_json(data)
        return
    if not data:
        click.echo("no pools", err=True)
        return
    print_table(
        None,
        ["NAME", "AGENTS", "LABELS", "AGE", "DESCRIPTION"],
        [
            (
                p["name"],
                p["agents"],
                labels_text(p.get("labels") or {}),
                age(p["created_at"]),
                p["description"],
            )
            for p in data
        ],
    )


@pools.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the pool is for.")
@click.option("--label", "label_items", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@json_option
@friendly
def pools_create(name: str, description: str, label_items: tuple[str, ...], as_json: bool) -> None:
    """Create a pool (NAME: lowercase letters, digits and `-`)."""
    body = {"name": name, "description": description, "labels": label_pairs(label_items)}
    pool = gateway().request("POST", "/api/v1/pools", json=body)
    if as_json:
        print_json(pool)
        return
    click.echo(f"created pool {pool['name']}")


@pools.command("get")
@click.argument("name")
@json_option
@friendly
def pools_get(name: str, as_json: bool) -> None:
    """One pool and the agents in it."""
    client = gateway()
    pool = client.get(f"/api/v1/pools/{segment(name)}")
    if as_json:
        print_json(pool)
        return
    print_fields(
        [
            ("Name", pool["name"]),
            ("Description", pool["description"]),
            ("Labels", labels_text(pool.get("labels") or {})),
            ("Agents", pool["agents"]),
            ("Created", f"{pool['created_at']} ({ago(pool['created_at'])})"),
        ]
    )
    if not pool["agents"]:
        return
    page = client.get("/api/v1/agents", pool=pool["name"], limit=100)
    if page["items"]:
        click.echo()
        click.echo("Agents")
        print_agents(page["items"])
    if page.get("next"):
        click.echo(f"showing the first {len(page['items'])} of {page['total']} agents", err=True)


@pools.command("delete")
@click.argument("name")
@json_option
@friendly
def pools_delete(name: str, as_json: bool) -> None:
    """Delete an empty pool (an error while it holds agents)."""
    pool = gateway().request("DELETE", f"/api/v1/pools/{segment(name)}")
    if as_json:
        print_json(pool)
        return
    click.echo(f"deleted pool {pool['name']}")


@click.command("discover")
@click.argument("ref")
@click.option(
    "--pick",
    type=click.Choice(get_args(Pick)),
    help="Also choose one instance: in turn, or the one with the fewest messages in flight.",
)
@json_option
@friendly
def discover(ref: str, pick: str | None, as_json: bool) -> None:
    """How to reach an agent: its inbox and its healthy instances.

    REF is an agent's id, its name, or NAME.POOL. The inbox subject is persisted and delivered
    to one replica; each instance's DIRECT subject reaches that very replica (not persisted).
    """
    found = gateway().get(f"/api/v1/discovery/{segment(ref)}", pick=pick)
    if as_json:
        print_json(found)
        return
    picked = found.get("picked")
    fields: list[tuple[str, Any]] = [
        ("Agent", f"{found['name']} ({found['agent_id']})"),
        ("Pool", found.get("pool") or ""),
        ("Status", found["status"]),
        ("Inbox", found["inbox"]),
    ]
    if picked:  # with --pick and no healthy instance the gateway answers 503 instead
        fields.append(("Picked", f"{picked['instance_id']} ({pick})"))
    print_fields(fields)
    click.echo()
    endpoints = found["endpoints"]
    if not endpoints:
        click.echo("Endpoints: none (no healthy instance)")
        return
    columns = ["INSTANCE", "HOST", "HEALTH", "INFLIGHT", "DIRECT"]
    rows = [
        [e["instance_id"], e["host_id"], e["health"], e["inflight"], e["direct"]] for e in endpoints
    ]
    if pick:
        columns.append("PICKED")
        chosen = picked["instance_id"] if picked else None
        for row, e in zip(rows, endpoints, strict=True):
            row.append("*" if e["instance_id"] == chosen else "")
    print_table("Endpoints", columns, rows)
