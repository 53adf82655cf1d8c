"""`cortex logs`: the log lines of every process, searched, and followed with `-f`."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import click

from cortex.cli.client import CliError, GatewayClient, GatewayUnreachable
from cortex.cli.common import friendly, gateway

LEVELS = ("debug", "info", "warning", "error", "critical")
STYLES = {"debug": "bright_black", "warning": "yellow", "error": "red", "critical": "red"}
SHOWN = ("timestamp", "level", "service", "event")
"""Fields every line shows in its columns; the others follow as `key=value`."""
RECONNECT_FOR = 60.0
"""Seconds `-f` keeps reconnecting a lost stream before it gives up."""
TRANSIENT = (502, 503, 504)
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Then print each new line as it is stored.")
@click.option("--service", metavar="S", help="Lines of one process kind (gateway, host, ...).")
@click.option("--agent", metavar="A", help="Lines about an agent (its id or name).")
@click.option("--execution", metavar="E", help="Lines of a workflow execution.")
@click.option("--correlation", metavar="C", help="Lines of one request (its correlation id).")
@click.option("--level", type=click.Choice(LEVELS), metavar="L", help="This level or a worse one.")
@click.option("--grep", "text", metavar="TEXT", help="Lines holding TEXT (3 characters or more).")
@click.option("--since", metavar="WHEN", help="Stored since: 10m, 2h, 1d, or an ISO 8601 time.")
@click.option("--until", metavar="WHEN", help="Stored until: as --since.")
@click.option(
    "-n",
    "--lines",
    "limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="How many of the newest lines to print first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (seq, line).")
@friendly
def logs(
    follow: bool,
    service: str | None,
    agent: str | None,
    execution: str | None,
    correlation: str | None,
    level: str | None,
    text: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest log lines of every process of the platform, printed oldest first.

    Every filter given must match. Lines come from the stream CORTEX_LOGS (kept 3 days, up
    to CORTEX_LOGS_MAX_BYTES). With -f, the newest lines are printed and then each new one
    as it is stored, until Ctrl-C.
    """
    filters = {
        "service": service,
        "agent": agent,
        "execution": execution,
        "correlation": correlation,
        "level": level,
        "text": text,
        "since": _when(since, "--since"),
        "until": _when(until, "--until"),
    }
    client = gateway()
    page = client.get("/api/v1/logs", limit=limit, **filters)
    show = _printer(as_json)
    for item in reversed(page["items"]):
        show(item)
    if not follow:
        if page.get("next") and not as_json:
            click.echo(f"showing the newest {len(page['items'])}; -n shows more", err=True)
        return
    try:
        _follow(client, filters, page["last_seq"], show)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _follow(
    client: GatewayClient, filters: dict[str, Any], after: int, show: Callable[[Any], None]
) -> None:
    """Print each new line until interrupted; a lost stream is reconnected after the last line
    printed, so nothing is printed twice or skipped."""
    failing_since: float | None = None
    told = ""
    while True:
        params = {k: v for k, v in {**filters, "after": after}.items() if v is not None}
        query = urlencode(params)
        try:
            with contextlib.closing(client.events(f"/api/v1/logs/stream?{query}")) as stream:
                for message in stream:
                    failing_since, told = None, ""
                    if message.event == "log":
                        item = json.loads(message.data)
                        show(item)
                        after = int(item["seq"])
            problem = "the gateway ended the stream"
        except GatewayUnreachable as exc:
            problem = str(exc)
        except CliError as exc:
            if exc.status not in TRANSIENT:
                raise
            problem = str(exc)
        failing_since = failing_since or time.monotonic()
        if time.monotonic() - failing_since > RECONNECT_FOR:
            raise CliError(f"lost the log stream: {problem}")
        if problem != told:
            click.echo(f"{problem}; reconnecting", err=True)
            told = problem
        time.sleep(1.0)


def _when(value: str | None, option: str) -> str | None:
    """An ISO 8601 time (UTC unless it says otherwise) from `10m` (ago) or a time."""
    if value is None:
        return None
    ago = _AGO.match(value.strip())
    if ago:
        seconds = float(ago.group(1)) * _UNIT[ago.group(2)]
        return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} {value!r}: give a time ago (30s, 10m, 2h, 1d) or an ISO 8601 time",
            exit_code=2,
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _printer(as_json: bool) -> Callable[[Any], None]:
    if as_json:
        return lambda item: click.echo(json.dumps(item, separators=(",", ":")))
    colour = sys.stdout.isatty()

    def show(item: dict[str, Any]) -> None:
        click.echo(render(item["line"], colour=colour))

    return show


def render(line: dict[str, Any], *, colour: bool = False) -> str:
    """`2026-05-10T12:00:01.123Z  info     lifecycle  agent created  agent_id=... name=...`."""
    level = str(line.get("level", ""))
    head = f"{line.get('timestamp', '')}  {level:<8} {line.get('service', ''):<10} "
    if colour and level in STYLES:
        head = click.style(head, fg=STYLES[level])
    rest = [f"{key}={_value(key, value)}" for key, value in line.items() if key not in SHOWN]
    return "  ".join([head + str(line.get("event", "")), *rest])


def _value(key: str, value: Any) -> str:
    if key == "exception" and isinstance(value, list) and value and isinstance(value[-1], dict):
        # structlog's structured traceback: its last exception says what went wrong.
        last = value[-1]
        value = f"{last.get('exc_type')}: {last.get('exc_value')}"
    if isinstance(value, str):
        return value if value and not any(c.isspace() for c in value) else json.dumps(value)
    return json.dumps(value, separators=(",", ":"), default=str)
