"""`cortex agents send`: one message to an agent, and with `--wait` its reply."""

from __future__ import annotations

import base64
import json
import sys
from typing import IO, Any

import click

from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, segment
from cortex.cli.inputs import header_pairs
from cortex.cli.output import print_json

MAX_WAIT = 300.0
"""The gateway's limit for `wait`."""


@click.command("send")
@click.argument("ref")
@click.argument("payload", required=False)
@click.option("--text", "kind", flag_value="text", help="Send PAYLOAD as text/plain.")
@click.option(
    "--json", "kind", flag_value="json", help="PAYLOAD must be JSON (an error if it is not)."
)
@click.option(
    "--binary-file",
    type=click.File("rb"),
    metavar="FILE",
    help="Send FILE's bytes as application/octet-stream (`-`: stdin) instead of PAYLOAD.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0, MAX_WAIT, min_open=True),
    metavar="SECONDS",
    help="Wait this long for the reply and print it.",
)
@click.option("--header", "header_items", multiple=True, metavar="X-NAME=VALUE", help="Repeatable.")
@friendly
def send(
    ref: str,
    payload: str | None,
    kind: str | None,
    binary_file: IO[bytes] | None,
    wait: float | None,
    header_items: tuple[str, ...],
) -> None:
    """Send a message to an agent (and wait for its reply).

    `-` as PAYLOAD reads it from stdin. PAYLOAD is JSON when it parses as JSON (`42`, `{"a": 1}`),
    else text, unless --json or --text says which. Without --wait the message id is printed once the
    message is stored; with --wait the reply is (JSON pretty-printed), or the agent's error with
    exit status 1.
    """
    body = _message(payload, kind, binary_file)
    body["headers"] = header_pairs(header_items)
    params = {"wait": wait} if wait else {}
    # The HTTP call must outlast the wait, or the client gives up before the gateway answers.
    client = gateway(timeout=30.0 + (wait or 0))
    result = client.request(
        "POST", f"/api/v1/agents/{segment(ref)}/messages", json=body, params=params
    )
    if result["status"] == "accepted":
        click.echo(result["id"])
    elif result["status"] == "error":
        raise CliError(f"agent {ref} failed on message {result['id']}: {result.get('error')}")
    else:
        _print_reply(result["reply"])


def _message(
    payload: str | None, kind: str | None, binary_file: IO[bytes] | None
) -> dict[str, Any]:
    if binary_file is not None:
        if payload is not None or kind:
            raise click.UsageError("--binary-file replaces PAYLOAD, --json and --text")
        data = base64.b64encode(binary_file.read()).decode()
        return {"payload": data, "content_type": "application/octet-stream"}
    if payload is None:
        raise click.UsageError("give a PAYLOAD (`-` reads stdin) or --binary-file")
    text = sys.stdin.read() if payload == "-" else payload
    if kind == "text":
        return {"payload": text, "content_type": "text/plain"}
    try:
        value = json.loads(text)
    except ValueError as exc:
        if kind == "json":
            raise click.BadParameter(f"not JSON: {exc}", param_hint="PAYLOAD") from None
        return {"payload": text, "content_type": "text/plain"}
    return {"payload": value, "content_type": "application/json"}


def _print_reply(reply: dict[str, Any]) -> None:
    content_type, payload = reply["content_type"], reply["payload"]
    if content_type == "application/json":
        print_json(payload)
    elif content_type == "text/plain":
        click.echo(payload, nl=not payload.endswith("\n"))
    elif sys.stdout.isatty():
        # Raw bytes would garble the terminal: show base64 and say how to get the bytes.
        click.echo(payload)
        click.echo("(binary reply, base64; redirect stdout to a file for the bytes)", err=True)
    else:
        sys.stdout.buffer.write(base64.b64decode(payload))
        sys.stdout.buffer.flush()
