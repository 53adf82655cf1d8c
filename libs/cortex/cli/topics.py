"""`cortex topics`, `cortex subscriptions`, `cortex subscribe` and `cortex unsubscribe`: which
agents get the messages published to which topics."""

from __future__ import annotations

from typing import Any

import click

from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.output import age, print_json, print_table


@click.command("topics")
@json_option
@friendly
def topics(as_json: bool) -> None:
    """Topics with at least one subscribed agent."""
    data: list[dict[str, Any]] = gateway().get("/api/v1/topics")
    if as_json:
        print_json(data)
        return
    if not data:
        click.echo("no topics (no agent is subscribed to any)", err=True)
        return
    print_table(None, ["TOPIC", "SUBSCRIBERS"], [(t["topic"], t["subscribers"]) for t in data])


@click.command("subscriptions")
@click.argument("ref", metavar="AGENT")
@json_option
@friendly
def subscriptions(ref: str, as_json: bool) -> None:
    """The topics an agent takes messages from.

    SOURCE is `template` for the template's `topics` (subscribed when the agent was created) and
    `runtime` for `cortex subscribe` and the SDK's `subscribe`.
    """
    data: list[dict[str, Any]] = gateway().get(f"/api/v1/agents/{segment(ref)}/subscriptions")
    if as_json:
        print_json(data)
        return
    if not data:
        click.echo(f"agent {ref} is subscribed to no topic", err=True)
        return
    print_table(
        None,
        ["TOPIC", "SOURCE", "AGE"],
        [(s["topic"], s["source"], age(s["created_at"])) for s in data],
    )


@click.command("subscribe")
@click.argument("ref", metavar="AGENT")
@click.argument("topic")
@json_option
@friendly
def subscribe(ref: str, topic: str, as_json: bool) -> None:
    """Subscribe an agent to a topic: from now on it gets a copy of every message published to
    it (one of its replicas handles each)."""
    view = gateway().request(
        "POST", f"/api/v1/agents/{segment(ref)}/subscriptions", json={"topic": topic}
    )
    if as_json:
        print_json(view)
        return
    click.echo(f"subscribed agent {ref} to topic {view['topic']}")


@click.command("unsubscribe")
@click.argument("ref", metavar="AGENT")
@click.argument("topic")
@friendly
def unsubscribe(ref: str, topic: str) -> None:
    """Stop an agent's copies of a topic's messages (also for a topic its template named)."""
    gateway().request("DELETE", f"/api/v1/agents/{segment(ref)}/subscriptions/{segment(topic)}")
    click.echo(f"unsubscribed agent {ref} from topic {topic}")
