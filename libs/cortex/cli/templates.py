"""`cortex templates`: what agents can be made of (`list`, `get`, `register`)."""

from __future__ import annotations

from typing import Any

import click

from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.inputs import read_mapping
from cortex.cli.output import compact_json, print_fields, print_json, print_table


@click.group()
def templates() -> None:
    """Register and inspect agent templates.

    A template names a handler (or image), a config schema and defaults. Versions are immutable
    once registered; `name` alone means the latest version.
    """


@templates.command("list")
@json_option
@friendly
def templates_list(as_json: bool) -> None:
    """Every template, with its versions."""
    data = gateway().get("/api/v1/templates")
    if as_json:
        print_json(data)
        return
    print_table(
        None,
        ["NAME", "LATEST", "VERSIONS", "RUNTIME", "DESCRIPTION"],
        [
            (t["name"], t["latest"], ", ".join(t["versions"]), t["runtime"], t["description"])
            for t in data
        ],
    )


@templates.command("get")
@click.argument("name")
@json_option
@friendly
def templates_get(name: str, as_json: bool) -> None:
    """Every version of one template, oldest first; the latest in detail."""
    data = gateway().get(f"/api/v1/templates/{segment(name)}")
    if as_json:
        print_json(data)
        return
    versions = data["versions"]
    latest = versions[-1]
    print_fields(
        [
            ("Name", data["name"]),
            ("Latest", latest["version"]),
            ("Description", latest["description"]),
            ("Runtime", latest["runtime"]),
            ("Handler" if latest["runtime"] == "host" else "Image", _runs(latest)),
            ("Default config", compact_json(latest["default_config"])),
            ("Config schema", compact_json(latest["config_schema"])),
        ]
    )
    click.echo()
    print_table(
        "Versions",
        ["VERSION", "RUNTIME", "RUNS", "REPLICAS", "CONCURRENCY", "REGISTERED", "BY"],
        [
            (
                v["version"],
                v["runtime"],
                _runs(v),
                v["default_replicas"],
                v["concurrency"],
                v["registered_at"],
                v.get("registered_by"),
            )
            for v in versions
        ],
    )


@templates.command("register")
@click.option(
    "-f",
    "--file",
    "source",
    required=True,
    metavar="FILE",
    help="The template as YAML or JSON; `-` reads stdin.",
)
@json_option
@friendly
def templates_register(source: str, as_json: bool) -> None:
    """Register a template version from a file (name, version, handler, config_schema, ...).

    Registering the same version again with the same content changes nothing; with different
    content it is refused: publish a new version instead.
    """
    spec = read_mapping(source, "a template (name, version, handler, ...)")
    status, view = gateway().exchange("POST", "/api/v1/templates", json=spec)
    if as_json:
        print_json(view)
        return
    click.echo(registration("template", view, status))


def registration(kind: str, view: dict[str, Any], status: int) -> str:
    """What registering a version did: 201 registered it, 200 found it registered already."""
    ref = f"{kind} {view['name']}@{view['version']}"
    if status == 201:
        return f"registered {ref}"
    return f"{ref} is registered already with the same definition: unchanged"


def _runs(version: dict[str, object]) -> str:
    return str(version.get("handler") or version.get("image") or "")
