"""`cortex state`: an agent's state document (one versioned JSON value), read, replaced,
merge-patched and its history."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cortex.cli.agent_views import short
from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, json_option, segment
from cortex.cli.output import compact_json, print_json, print_table

if_match_option = click.option(
    "--if-match",
    type=click.IntRange(0),
    metavar="VERSION",
    help="Write only if the state is still at this version (0: never written).",
)


@click.group()
def state() -> None:
    """Read and write an agent's state.

    The state is one JSON document per agent, kept by the platform across restarts and
    redeploys; every change gives it a new version. REF is an agent's id or its name.
    """


@state.command("get")
@click.argument("ref")
@json_option
@friendly
def state_get(ref: str, as_json: bool) -> None:
    """The state document, pretty-printed; its version goes to stderr."""
    view = gateway().get(_path(ref))
    if as_json:
        print_json(view)
        return
    print_json(view["value"])
    click.echo(f"version {view['version']}", err=True)


@state.command("put")
@click.argument("ref")
@click.argument("document", metavar="[JSON]", required=False)
@click.option(
    "-f", "--file", "source", metavar="FILE", help="Read the document from FILE; `-`: stdin."
)
@if_match_option
@json_option
@friendly
def state_put(
    ref: str, document: str | None, source: str | None, if_match: int | None, as_json: bool
) -> None:
    """Replace the state document with JSON (any JSON value).

    The document is the JSON argument (`-` reads stdin) or the content of --file. Without
    --if-match the last writer wins; with it, the write is refused if someone wrote since.
    """
    if document is None and source is None:
        raise click.UsageError("give the document: JSON (`-` reads stdin) or --file FILE")
    if document is not None and source is not None:
        raise click.UsageError("give JSON or --file FILE, not both")
    value = _argument(document) if document is not None else _file(source or "-")
    _report(_write("PUT", ref, value, if_match), as_json)


@state.command("patch")
@click.argument("ref")
@click.argument("document", metavar="JSON")
@if_match_option
@json_option
@friendly
def state_patch(ref: str, document: str, if_match: int | None, as_json: bool) -> None:
    """Merge JSON (an object) into the state document (RFC 7396).

    Keys of JSON replace the document's, nested objects are merged, and `null` removes a key.
    `-` reads JSON from stdin.
    """
    patch = _argument(document)
    if not isinstance(patch, dict):
        raise click.BadParameter("a merge patch must be a JSON object", param_hint="JSON")
    _report(_write("PATCH", ref, patch, if_match), as_json)


@state.command("history")
@click.argument("ref")
@json_option
@friendly
def state_history(ref: str, as_json: bool) -> None:
    """The current document and the versions before it, newest first."""
    data = gateway().get(_path(ref) + "/history")
    if as_json:
        print_json(data)
        return
    print_table(
        None,
        ["VERSION", "WRITER", "UPDATED", "VALUE"],
        [
            (v["version"], v.get("writer"), v.get("updated_at"), short(compact_json(v["value"])))
            for v in data["versions"]
        ],
    )


def _path(ref: str) -> str:
    return f"/api/v1/agents/{segment(ref)}/state"


def _write(method: str, ref: str, value: Any, if_match: int | None) -> dict[str, Any]:
    headers = {} if if_match is None else {"If-Match": f'"{if_match}"'}
    try:
        result: dict[str, Any] = gateway().request(method, _path(ref), json=value, headers=headers)
    except CliError as exc:
        current = exc.details.get("current_version")
        if exc.status != 412 or current is None:
            raise
        raise CliError(
            f"the state of {ref} is at version {current}, not {if_match}: it was written since; "
            f"read it again (cortex state get {ref}) and retry with --if-match {current}"
        ) from None
    return result


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    view = result["state"]
    if result["applied"]:
        click.echo(f"version {view['version']}")
    else:
        # Last writer wins: a write stamped later than this one is already in place.
        click.echo(
            f"not applied: a newer write (by {view.get('writer') or 'another writer'}) won; "
            f"the state stays at version {view['version']}"
        )


def _loads(text: str) -> Any:
    """JSON as the gateway takes it: no NaN or Infinity, which `json` would let through."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _argument(document: str) -> Any:
    text = sys.stdin.read() if document == "-" else document
    try:
        return _loads(text)
    except ValueError as exc:
        where = "JSON (stdin)" if document == "-" else "JSON"
        raise click.BadParameter(f"not JSON: {exc}", param_hint=where) from None


def _file(source: str) -> Any:
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {where}: not UTF-8 text") from None
    if not text.strip():
        raise CliError(f"{where} is empty; it should hold a JSON document")
    try:
        return _loads(text)
    except ValueError as exc:
        raise CliError(f"{where} is not JSON: {exc}") from None
