"""`cortex send` (also `cortex agents send`): one message to an agent, with `--wait` its reply
or with `--confirm` what became of it; `cortex publish`: one message to a topic."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from cortex.cli.client import CliError
from cortex.cli.common import friendly, gateway, segment
from cortex.cli.inputs import header_pairs
from cortex.cli.output import print_json
from cortex.contracts.lifecycle import AgentStatus
from cortex.kernel.serving import how_to_deploy, not_serving

MAX_WAIT = 300.0
"""The gateway's limit for `wait` and `confirm`."""

F = TypeVar("F", bound=Callable[..., Any])


def payload_options(fn: F) -> F:
    """PAYLOAD and how to read it: the same for `send` and `publish`."""
    for option in reversed(
        [
            click.argument("payload", required=False),
            click.option("--text", "kind", flag_value="text", help="Send PAYLOAD as text/plain."),
            click.option(
                "--json",
                "kind",
                flag_value="json",
                help="PAYLOAD must be JSON (an error if it is not).",
            ),
            click.option(
                "--binary-file",
                type=click.File("rb"),
                metavar="FILE",
                help="Send FILE's bytes as application/octet-stream (`-`: stdin) instead of "
                "PAYLOAD.",
            ),
            click.option(
                "--header",
                "header_items",
                multiple=True,
                metavar="X-NAME=VALUE",
                help="Repeatable.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def seconds_option(name: str, help_text: str) -> Callable[[F], F]:
    return click.option(
        name,
        type=click.FloatRange(0, MAX_WAIT, min_open=True),
        metavar="SECONDS",
        help=help_text,
    )


@click.command("send")
@click.argument("ref")
@payload_options
@seconds_option("--wait", "Wait this long for the reply and print it.")
@seconds_option(
    "--confirm",
    "Wait this long until the agent's handler succeeded (`acked`) or the message was "
    "dead-lettered.",
)
@friendly
def send(
    ref: str,
    payload: str | None,
    kind: str | None,
    binary_file: IO[bytes] | None,
    header_items: tuple[str, ...],
    wait: float | None,
    confirm: float | None,
) -> None:
    """Send a message to an agent (and wait for its reply, or its acknowledgement).

    `-` as PAYLOAD reads it from stdin. PAYLOAD is JSON when it parses as JSON (`42`, `{"a": 1}`),
    else text, unless --json or --text says which. Without --wait or --confirm the message id is
    printed once the message is stored. With --wait the reply is printed (JSON pretty-printed), or
    the agent's error with exit status 1. With --confirm `acked` is printed once a handler
    succeeded, `dead_lettered` (exit status 1) if the agent gave up on it.
    """
    if wait and confirm:
        raise click.UsageError("--wait (for a reply) and --confirm exclude each other")
    body = message_body(payload, kind, binary_file, header_items)
    params = {"wait": wait} if wait else {"confirm": confirm} if confirm else {}
    # The HTTP call must outlast the wait, or the client gives up before the gateway answers.
    client = gateway(timeout=30.0 + (wait or confirm or 0))
    try:
        result = client.request(
            "POST", f"/api/v1/agents/{segment(ref)}/messages", json=body, params=params
        )
    except CliError as exc:
        raise _explained(exc, ref) from None
    status = result["status"]
    if status == "accepted":
        click.echo(result["id"])
        _note_if_idle(ref, result.get("agent_status"))
    elif status == "acked":
        click.echo(status)
    elif status == "dead_lettered":
        # The word on stdout for scripts; what to do about it on stderr, with the exit status.
        click.echo(status)
        raise CliError(
            f"agent {ref} gave up on message {result['id']}; "
            f"see why with: cortex dlq show {result['id']}"
        )
    elif status == "error":
        raise CliError(f"agent {ref} failed on message {result['id']}: {result.get('error')}")
    else:
        reply = result["reply"]
        print_payload(reply["content_type"], reply["payload"])


def _note_if_idle(ref: str, status: AgentStatus | None) -> None:
    """A message to an agent that does not run is stored all the same; say that it waits."""
    if status is None or (idle := not_serving(ref, status)) is None:
        return
    click.echo(f"note: {idle}: the message waits in its inbox until it runs", err=True)
    click.echo(how_to_deploy(ref, status), err=True)


def _explained(exc: CliError, ref: str) -> CliError:
    """The gateway's 409 for a wait on an agent that does not run, told as what to do."""
    details = exc.details
    if exc.status != 409 or not {"message_id", "agent_status"} <= details.keys():
        return exc
    status = details["agent_status"]
    return CliError(
        f"{not_serving(ref, status)}: message {details['message_id']} waits in its inbox and "
        f"is handled once the agent runs\n{how_to_deploy(ref, status)}"
    )


@click.command("publish")
@click.argument("topic")
@payload_options
@friendly
def publish(
    topic: str,
    payload: str | None,
    kind: str | None,
    binary_file: IO[bytes] | None,
    header_items: tuple[str, ...],
) -> None:
    """Publish a message to a topic; prints its id.

    Every agent subscribed to TOPIC gets its own copy (handled by one of its replicas). PAYLOAD as
    for `cortex send`. Follow it with `cortex messages get ID` (COPIES: how many subscribers).
    """
    body = message_body(payload, kind, binary_file, header_items)
    result = gateway().request("POST", f"/api/v1/topics/{segment(topic)}/messages", json=body)
    click.echo(result["id"])


def message_body(
    payload: str | None,
    kind: str | None,
    binary_file: IO[bytes] | None,
    header_items: tuple[str, ...],
) -> dict[str, Any]:
    """The gateway's `SendMessage`: the payload as JSON, text or base64, and the headers."""
    body = _payload(payload, kind, binary_file)
    body["headers"] = header_pairs(header_items)
    return body


def _payload(
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


def print_payload(content_type: str, payload: Any) -> None:
    """A payload as the API gives it (JSON value, text, base64) the way its type reads best."""
    if content_type == "application/json":
        print_json(payload)
    elif content_type == "text/plain":
        click.echo(payload, nl=not payload.endswith("\n"))
    elif sys.stdout.isatty():
        # Raw bytes would garble the terminal: show base64 and say how to get the bytes.
        click.echo(payload)
        click.echo("(binary, base64; redirect stdout to a file for the bytes)", err=True)
    else:
        sys.stdout.buffer.write(base64.b64decode(payload))
        sys.stdout.buffer.flush()
