"""`cortex audit`: who changed what and when."""

from __future__ import annotations

from typing import Any, get_args

import click

from cortex.cli.common import friendly, gateway, json_option
from cortex.cli.output import print_json, print_table
from cortex.contracts.changes import ChangeKind


@click.command()
@click.option("--actor", help="Changes by this actor only (`api:<token name>`).")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(get_args(ChangeKind)), help="Repeatable."
)
@click.option("--id", "thing", help="Changes to the thing with this id only.")
@click.option("--since", help="At or after this time (ISO 8601, UTC unless it says otherwise).")
@click.option("--until", help="Before this time (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@friendly
def audit(
    actor: str | None,
    kinds: tuple[str, ...],
    thing: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Who changed what and when, oldest first (kept CORTEX_EVENTS_DAYS, seven by default)."""
    api = gateway()
    items: list[dict[str, Any]] = []
    after: int | None = None
    while len(items) < limit:
        page = api.get(
            "/api/v1/audit",
            actor=actor,
            kind=list(kinds) or None,
            id=thing,
            since=None if after is not None else since,
            until=until,
            after=after,
            limit=min(1000, limit - len(items)),
        )
        items += page["items"]
        after = page.get("next_after")
        if after is None:
            break
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no changes match", err=True)
        return
    print_table(
        None,
        ["TIME", "ACTOR", "CHANGE", "ID", "VERSION"],
        [
            (c["occurred_at"], c.get("actor") or "-", c["type"], c["id"], c["version"])
            for c in items
        ],
    )
