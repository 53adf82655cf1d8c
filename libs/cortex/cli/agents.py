"""`cortex agents`: create, list, get and update agents (the group also holds the commands of
`agent_actions` and `send`)."""

from __future__ import annotations

from typing import Any, get_args

import click
import yaml

from cortex.cli.agent_actions import delete, deploy, scale
from cortex.cli.agent_views import fetch_pages, print_agent, print_agents, print_instances
from cortex.cli.agent_views import template_ref as tref
from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.inputs import config_pairs, label_pairs, read_mapping
from cortex.cli.output import compact_json, print_json
from cortex.cli.send import send
from cortex.contracts.lifecycle import AgentStatus

AGENT_FILE = "an agent (name, template, config, replicas, labels)"

config_option = click.option(
    "--config",
    "config_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A config value; JSON when it parses (3, true, {...}), else text. Repeatable.",
)
config_file_option = click.option(
    "--config-file", metavar="FILE", help="The config object as YAML or JSON; `-` reads stdin."
)
label_option = click.option(
    "--label", "label_items", multiple=True, metavar="KEY=VALUE", help="Repeatable."
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Validate and show the result; change nothing."
)


@click.group()
def agents() -> None:
    """Create, deploy, scale and talk to agents.

    An agent is made from a template and runs as replicas on the agent hosts. REF is an
    agent's id or its name.
    """


agents.add_command(deploy)
agents.add_command(scale)
agents.add_command(delete)
agents.add_command(send)


@agents.command("create")
@click.argument("name", required=False)
@click.option(
    "-f",
    "--file",
    "source",
    metavar="FILE",
    help="The agent as YAML or JSON (name, template, config, replicas, labels); `-`: stdin.",
)
@click.option("-t", "--template", help="`name` (its latest version) or `name@version`.")
@click.option("--replicas", type=click.IntRange(0, 10_000), help="Default: the template's.")
@click.option("--pool", help="A pool that exists (`cortex pools create`).")
@config_option
@config_file_option
@label_option
@click.option("--deploy", "deploy_now", is_flag=True, help="Deploy right after creating.")
@dry_run_option
@json_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    help="yaml: with --dry-run, the Kubernetes objects a `kubernetes` agent would be made "
    "of (else the agent as YAML).",
)
@friendly
def agents_create(
    name: str | None,
    source: str | None,
    template: str | None,
    replicas: int | None,
    pool: str | None,
    config_items: tuple[str, ...],
    config_file: str | None,
    label_items: tuple[str, ...],
    deploy_now: bool,
    dry_run: bool,
    as_json: bool,
    output: str,
) -> None:
    """Create an agent from flags or a file.

    Flags override the values of the -f file. Config is merged in this order: the file's `config`,
    --config-file, --config; the server then merges it over the template's default config and checks
    it against its schema.
    """
    body: dict[str, Any] = read_mapping(source, AGENT_FILE) if source else {}
    overrides = {"name": name, "template": template, "replicas": replicas, "pool": pool}
    body.update({k: v for k, v in overrides.items() if v is not None})
    if "name" not in body:
        raise click.UsageError("give the agent a NAME (or `name:` in the -f file)")
    if "template" not in body:
        raise click.UsageError("give a --template (or `template:` in the -f file)")
    config = _merged(body.get("config"), "config", source)
    config.update(read_mapping(config_file, "a config object") if config_file else {})
    config.update(config_pairs(config_items))
    labels = _merged(body.get("labels"), "labels", source)
    labels.update(label_pairs(label_items))
    body.update(config=config, labels=labels)
    if deploy_now:
        body["deploy"] = True
    agent = gateway().request("POST", "/api/v1/agents", json=body, params=_dry(dry_run))
    if as_json or output == "json":
        print_json(agent)
        return
    if output == "yaml":
        shown = agent.pop("objects", None) or [agent]
        click.echo(yaml.safe_dump_all(shown, sort_keys=False), nl=False)
        return
    what = f"agent {agent['name']} from {tref(agent)} with {agent['replicas']} replica(s)"
    if dry_run:
        click.echo(f"dry run: would create {what}, config {compact_json(agent['config'])}")
        click.echo("nothing was created")
    elif agent["status"] == "created":
        click.echo(f"created {what} (id {agent['id']})")
        click.echo(f"start it with: cortex agents deploy {agent['name']}")
    else:
        click.echo(f"created {what} (id {agent['id']}); status {agent['status']}")


@agents.command("list")
@click.option("--status", type=click.Choice(get_args(AgentStatus)))
@click.option("--template", help="Template name.")
@click.option(
    "--label", "label_items", multiple=True, metavar="KEY=VALUE", help="Repeatable; all must match."
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Page size."
)
@click.option("--all", "everything", is_flag=True, help="Follow every page, not just the first.")
@json_option
@friendly
def agents_list(
    status: str | None,
    template: str | None,
    label_items: tuple[str, ...],
    limit: int,
    everything: bool,
    as_json: bool,
) -> None:
    """Agents, ordered by name."""
    label_pairs(label_items)  # a malformed KEY=VALUE is a usage error here, not a 422 later
    params = {"status": status, "template": template, "label": list(label_items), "limit": limit}
    page = fetch_pages(gateway(), "/api/v1/agents", params, everything)
    if as_json:
        print_json(page)
        return
    items = page["items"]
    if not items:
        click.echo("no agents" + (" match" if status or template or label_items else ""), err=True)
        return
    print_agents(items)
    if page.get("next"):
        # On stderr: a script reading the table must not mistake this for a row.
        click.echo(f"showing {len(items)} of {page['total']}; --all lists every one", err=True)


@agents.command("get")
@click.argument("ref")
@json_option
@friendly
def agents_get(ref: str, as_json: bool) -> None:
    """One agent and its instances (its replicas, as the registry sees them)."""
    agent = gateway().get(f"/api/v1/agents/{segment(ref)}")
    if as_json:
        print_json(agent)
        return
    print_agent(agent)
    click.echo()
    if agent.get("instances"):
        print_instances(agent["instances"])
    else:
        click.echo("Instances: none")


@agents.command("update")
@click.argument("ref")
@config_option
@config_file_option
@click.option(
    "--label", "label_items", multiple=True, metavar="KEY=VALUE", help="Replaces all labels."
)
@click.option("--pool", help='Move the agent to this pool; "" takes it out of its pool.')
@dry_run_option
@json_option
@friendly
def agents_update(
    ref: str,
    config_items: tuple[str, ...],
    config_file: str | None,
    label_items: tuple[str, ...],
    pool: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Replace an agent's config and/or labels.

    The new config is --config-file with the --config values over it: it replaces the whole
    config object (keys not given are dropped), and is checked against the template's schema.
    """
    body: dict[str, Any] = {}
    if config_file or config_items:
        config = read_mapping(config_file, "a config object") if config_file else {}
        body["config"] = {**config, **config_pairs(config_items)}
    if label_items:
        body["labels"] = label_pairs(label_items)
    if pool is not None:
        body["pool"] = pool
    if not body:
        raise click.UsageError("nothing to update: give --config, --config-file, --label or --pool")
    agent = gateway().request(
        "PUT", f"/api/v1/agents/{segment(ref)}", json=body, params=_dry(dry_run)
    )
    if as_json:
        print_json(agent)
        return
    changes = ", ".join(
        f"{key} {compact_json(agent[key])}" for key in ("config", "labels", "pool") if key in body
    )
    if dry_run:
        click.echo(f"dry run: agent {agent['name']} would get {changes}; nothing changed")
    else:
        click.echo(f"updated agent {agent['name']}: {changes}")


def _dry(dry_run: bool) -> dict[str, str]:
    return {"dry_run": "true"} if dry_run else {}


def _merged(value: Any, key: str, source: str | None) -> dict[str, Any]:
    """The file's `config` or `labels`, to merge flags into: it must be a mapping to do so."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CliError(f"`{key}` in {source} must be a mapping of keys to values")
    return dict(value)
