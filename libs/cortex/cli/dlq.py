"""`cortex dlq`: messages the platform gave up on (list, show, replay, purge)."""

from __future__ import annotations

import sys
from typing import Any

import click

from cortex.cli.agent_views import fetch_pages, short
from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.message_views import AgentNames
from cortex.cli.output import age, ago, print_fields, print_json, print_table
from cortex.cli.send import print_payload

INLINE_LIMIT = 1024 * 1024
"""Payloads larger than this travel by claim check (`cortex.kernel.messages.INLINE_LIMIT`)."""


@click.group()
def dlq() -> None:
    """The dead-letter queue.

    A message lands here after its agent's handler failed in all of the template's
    `max_deliveries` deliveries, or when it was delivered that often without ever being
    acknowledged (its replica crashed each time). It stays (30 days) until it is replayed to its
    agent or purged. ID is the dead message's own id.
    """


@dlq.command("list")
@click.option("--agent", metavar="REF", help="Only this agent's (id or name).")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Page size."
)
@click.option("--all", "everything", is_flag=True, help="Follow every page, not just the first.")
@json_option
@friendly
def dlq_list(agent: str | None, limit: int, everything: bool, as_json: bool) -> None:
    """Dead letters, oldest first."""
    client = gateway()
    page = fetch_pages(client, "/api/v1/dlq", {"agent": agent, "limit": limit}, everything)
    if as_json:
        print_json(page)
        return
    items: list[dict[str, Any]] = page["items"]
    if not items:
        click.echo("no dead letters" + (f" for {agent}" if agent else ""), err=True)
        return
    names = AgentNames(client)
    print_table(
        None,
        ["ID", "AGENT", "FROM", "DELIVERIES", "DIED", "LAST ERROR"],
        [
            (
                d["id"],
                names(d["agent_id"]),
                names(d["from"]),
                d["deliveries"],
                f"{age(d['dead_at'])} ago",
                short(d.get("last_error") or d["reason"]),
            )
            for d in items
        ],
    )
    if page.get("next"):
        click.echo(
            f"showing the first {len(items)} of {page['total']}; --all lists every one", err=True
        )


@dlq.command("show")
@click.argument("dead_id", metavar="ID")
@json_option
@friendly
def dlq_show(dead_id: str, as_json: bool) -> None:
    """One dead letter: why it died, its last error, headers and payload."""
    client = gateway()
    letter = client.get(f"/api/v1/dlq/{segment(dead_id)}")
    if as_json:
        print_json(letter)
        return
    names = AgentNames(client)
    fields: list[tuple[str, Any]] = [
        ("ID", letter["id"]),
        ("Agent", f"{names(letter['agent_id'])} ({letter['agent_id']})"),
        ("From", names(letter["from"])),
        ("Deliveries", letter["deliveries"]),
        ("Reason", letter["reason"]),
        ("Last error", letter.get("last_error") or ""),
        ("Created", f"{letter['created_at']} ({ago(letter['created_at'])})"),
        ("Died", f"{letter['dead_at']} ({ago(letter['dead_at'])})"),
    ]
    if letter.get("headers"):
        fields.append(
            ("Headers", ", ".join(f"{k}={v}" for k, v in sorted(letter["headers"].items())))
        )
    fields += [("Content type", letter["content_type"]), ("Size", f"{letter['size']} bytes")]
    print_fields(fields)
    click.echo()
    if letter["payload"] is None and letter["size"] > INLINE_LIMIT:
        # The gateway leaves out a payload that travelled by claim check (up to 64 MiB).
        click.echo("Payload: in the object store (over 1 MiB), not shown; a replay carries it")
        return
    click.echo("Payload")
    # Flushed first: a binary payload goes straight to the byte stream, after the text above.
    sys.stdout.flush()
    print_payload(letter["content_type"], letter["payload"])


@dlq.command("replay")
@click.argument("dead_id", metavar="ID")
@json_option
@friendly
def dlq_replay(dead_id: str, as_json: bool) -> None:
    """Deliver a dead letter to its agent again, as a new message; prints the new id.

    The dead letter is removed once the new message is in the agent's inbox. Fix what made it
    fail first (e.g. `cortex agents update`), or it dies again.
    """
    replayed = gateway().request("POST", f"/api/v1/dlq/{segment(dead_id)}/replay")
    if as_json:
        print_json(replayed)
        return
    click.echo(replayed["id"])
    click.echo(f"follow it with: cortex messages get {replayed['id']}", err=True)


@dlq.command("purge")
@click.argument("dead_id", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask first.")
@friendly
def dlq_purge(dead_id: str, yes: bool) -> None:
    """Delete a dead letter for good (on a terminal, asks first unless --yes)."""
    # A script (stdin not a terminal) cannot answer; asking would hang or read its input.
    if not yes and sys.stdin.isatty():
        question = f"purge dead letter {dead_id}? Its payload is gone for good"
        if not click.confirm(question, default=False, err=True):
            raise CliError("not purged; nothing changed")
    gateway().request("DELETE", f"/api/v1/dlq/{segment(dead_id)}")
    click.echo(f"purged dead letter {dead_id}")
