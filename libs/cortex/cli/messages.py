"""`cortex messages`: an agent's message history and one message's status."""

from __future__ import annotations

from typing import Any

import click

from cortex.cli.agent_views import short
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.message_views import AgentNames, destination
from cortex.cli.output import age, ago, print_fields, print_json, print_table


class ListByDefault(click.Group):
    """`cortex messages AGENT` is short for `cortex messages list AGENT`; `get` stays a command.

    Click would otherwise read AGENT as a command name and fail with "No such command"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is None:
            # Only options: `--help` is the group's; `cortex messages --json` is `list`'s, which
            # then says that AGENT is missing.
            wants_list = bool(args) and not set(args) & set(ctx.help_option_names)
        else:
            wants_list = first not in self.commands
        return super().parse_args(ctx, ["list", *args] if wants_list else args)


@click.group(cls=ListByDefault)
def messages() -> None:
    """Message history and status.

    `cortex messages AGENT` lists the agent's recent messages (short for `cortex messages list
    AGENT`); `cortex messages get ID` shows one message: accepted, delivered, acked or
    dead_lettered.
    """


@messages.command("list")
@click.argument("ref", metavar="AGENT")
@click.option(
    "--direction",
    type=click.Choice(["in", "out", "both"]),
    default="in",
    show_default=True,
    help="Messages the agent got, sent (and published), or both.",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="How many."
)
@json_option
@friendly
def messages_list(ref: str, direction: str, limit: int, as_json: bool) -> None:
    """An agent's recent messages, newest first.

    AGENT is an agent's id or its name. Senders and receivers that are agents are shown by name;
    `api:<token>` is the HTTP API. A topic message's copy in the agent's inbox shows its topic.
    """
    client = gateway()
    path = f"/api/v1/agents/{segment(ref)}/messages"
    page = client.get(path, direction=direction, limit=limit)
    if as_json:
        print_json(page)
        return
    items: list[dict[str, Any]] = page["items"]
    if not items:
        click.echo(f"no messages ({direction})", err=True)
        return
    names = AgentNames(client)
    print_table(
        None,
        ["ID", "KIND", "FROM", "TO/TOPIC", "STATUS", "DELIVERIES", "AGE"],
        [
            (
                r["id"],
                r["kind"],
                names(r["from"]),
                destination(r, names),
                r["status"],
                r["deliveries"],
                age(r["created_at"]),
            )
            for r in items
        ],
    )
    if page.get("next"):
        # On stderr: a script reading the table must not mistake this for a row.
        click.echo(f"showing the newest {len(items)}; --limit shows more", err=True)


@messages.command("get")
@click.argument("msg_id", metavar="ID")
@json_option
@friendly
def messages_get(msg_id: str, as_json: bool) -> None:
    """One message: its status, deliveries and last error."""
    client = gateway()
    record = client.get(f"/api/v1/messages/{segment(msg_id)}")
    if as_json:
        print_json(record)
        return
    names = AgentNames(client)
    fields: list[tuple[str, Any]] = [
        ("ID", record["id"]),
        ("Kind", record["kind"]),
        ("From", names(record["from"])),
    ]
    if record.get("to"):
        fields.append(("To", names(record["to"])))
    if record.get("topic"):
        fields.append(("Topic", record["topic"]))
    if record.get("origin_id"):
        fields.append(("Copy of", record["origin_id"]))
    fields += [
        ("Content type", record["content_type"]),
        ("Size", f"{record['size']} bytes"),
        ("Status", record["status"]),
        ("Deliveries", record["deliveries"]),
    ]
    if record["kind"] == "topic":
        fields.append(("Copies", f"{record['copies']} (one per subscriber)"))
    if record.get("last_error"):
        fields.append(("Last error", short(record["last_error"], 200)))
    for label, key in (
        ("Created", "created_at"),
        ("Delivered", "delivered_at"),
        ("Acked", "acked_at"),
        ("Dead-lettered", "dead_lettered_at"),
    ):
        if record.get(key):
            fields.append((label, f"{record[key]} ({ago(record[key])})"))
    print_fields(fields)
    hint = _where_next(record)
    if hint:
        click.echo(hint, err=True)


def _where_next(record: dict[str, Any]) -> str | None:
    """A command that shows more, only where one does: a purged dead letter shows nowhere."""
    if record["status"] != "dead_lettered":
        return None
    kept = record.get("dead_letter")
    if kept == "replayed":
        return f"replayed as {record['replayed_as']}: cortex messages get {record['replayed_as']}"
    if kept == "purged":
        return "its dead letter was purged (or aged out of the dead-letter queue)"
    return f"see it with: cortex dlq show {record['id']}"
