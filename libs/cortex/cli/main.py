"""`cortex`: run the platform and drive it from a terminal."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from cortex.cli.admin import admin
from cortex.cli.agents import agents
from cortex.cli.audit import audit
from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, settings_or_exit
from cortex.cli.dlq import dlq
from cortex.cli.executions import executions
from cortex.cli.hosts import hosts, instances
from cortex.cli.logs import logs
from cortex.cli.messages import messages
from cortex.cli.output import print_json, print_table
from cortex.cli.pools import discover, pools
from cortex.cli.run import run
from cortex.cli.send import publish, send
from cortex.cli.state import state
from cortex.cli.templates import templates
from cortex.cli.topics import subscribe, subscriptions, topics, unsubscribe
from cortex.cli.workflows import workflows
from cortex.kernel import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cortex")
def cli() -> None:
    """CodeValdCortex: run fleets of AI agents and make them work together."""


@cli.command()
@friendly
def up() -> None:
    """Run the whole platform on this machine (NATS, services, gateway, agent hosts).

    Configured by CORTEX_* variables: CORTEX_DATA_DIR (./.cortex), CORTEX_HTTP_PORT (8080),
    CORTEX_NATS_PORT (4222) or CORTEX_NATS_URL, CORTEX_ADMIN_TOKEN, CORTEX_STORE.
    """
    from cortex.embedded.up import UpError, run_up

    settings = settings_or_exit()
    try:
        code = asyncio.run(run_up(settings, sys.stdout))
    except UpError as exc:
        raise CliError(str(exc)) from None
    sys.exit(code)


@cli.command(context_settings={"ignore_unknown_options": True})
def host() -> None:
    """Run an agent host in this process (what `cortex up` starts CORTEX_HOSTS of).

    Connects to CORTEX_NATS_URL; CORTEX_HOST_NAME names it, CORTEX_AGENT_PATH adds folders
    where agent classes are found. Stops gracefully on SIGTERM or Ctrl-C.
    """
    os.execv(sys.executable, [sys.executable, "-m", "cortex.host"])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@friendly
def status(as_json: bool) -> None:
    """Services, their instances, NATS and the event stores, as the gateway sees them."""
    data = gateway().get("/api/v1/status")
    if as_json:
        print_json(data)
        return
    nats = data["nats"]
    click.echo(f"CodeValdCortex {data['version']}")
    click.echo(
        f"NATS: {nats.get('url')} (server {nats.get('server_version')}, "
        f"JetStream {'on' if nats.get('jetstream') else 'off'})"
    )
    print_table(
        "Services",
        ["NAME", "INSTANCES", "VERSIONS", "ENDPOINTS"],
        [
            (s["name"], len(s["instances"]), ", ".join(s["versions"]), len(s["endpoints"]))
            for s in data["services"]
        ],
    )
    if data["stores"]:
        print_table(
            "Event stores",
            ["SERVICE", "KIND", "LOCATION"],
            [(s["service"], s["kind"], s["location"]) for s in data["stores"]],
        )
    if nats.get("streams"):
        print_table(
            "Streams",
            ["NAME", "MESSAGES", "BYTES", "CONSUMERS"],
            [(s["name"], s["messages"], s["bytes"], s["consumers"]) for s in nats["streams"]],
        )


@cli.command("nats-users")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@friendly
def nats_users(directory: Path) -> None:
    """Make the NKey seed of every NATS role in DIRECTORY (kept if there already) and print
    the nats-server `authorization` block that admits them, each with its role's permissions.

    What `cortex up` does for its own NATS, for a NATS you run yourself (the official chart:
    the block goes into its `config.merge`; the seeds into the Secret the cortex chart's
    `nats.nkeysSecret` names). CORTEX_NATS_PREFIX sets the subjects' root.
    """
    from cortex.embedded.nats_auth import ensure_keys, render_authorization

    keys = ensure_keys(directory, settings_or_exit().subjects())
    click.echo(render_authorization(keys), nl=False)
    click.echo(
        f"seeds (mode 0600) in {directory}: " + ", ".join(k.seed_path.name for k in keys.values()),
        err=True,
    )


@cli.group()
def tokens() -> None:
    """API tokens for the gateway (kept, hashed, in the data dir's tokens.json)."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    default="viewer",
    show_default=True,
)
@friendly
def tokens_create(name: str, role: str) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from cortex.kernel.tokens import create_token

    settings = settings_or_exit()
    token, _ = create_token(settings.effective_tokens_file, name, role)  # type: ignore[arg-type]
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly
def tokens_list(as_json: bool) -> None:
    """The tokens of the tokens file (names and roles, never the tokens)."""
    import msgspec

    from cortex.kernel.tokens import read_tokens_file

    records = read_tokens_file(settings_or_exit().effective_tokens_file).tokens
    if as_json:
        print_json(msgspec.to_builtins(records))
        return
    print_table(
        None, ["NAME", "ROLE", "CREATED"], [(t.name, t.role, t.created_at) for t in records]
    )


@tokens.command("revoke")
@click.argument("name")
@friendly
def tokens_revoke(name: str) -> None:
    """Remove a token; the gateway refuses it from its next request on."""
    from cortex.kernel.tokens import revoke_token

    if not revoke_token(settings_or_exit().effective_tokens_file, name):
        raise CliError(f"no token named {name!r}")
    click.echo(f"revoked {name}")


for _command in (
    templates,
    agents,
    state,
    pools,
    discover,
    hosts,
    instances,
    # Messaging. `send` is also `cortex agents send`: the most used command gets the short form.
    send,
    publish,
    messages,
    topics,
    subscriptions,
    subscribe,
    unsubscribe,
    dlq,
    # Workflows. `run` is create + execute: what one does most with a template.
    workflows,
    executions,
    run,
    logs,
    audit,
    # Operators: backup and restore.
    admin,
):
    cli.add_command(_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
