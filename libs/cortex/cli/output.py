"""Tables for people, JSON for programs (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def compact_json(value: Any) -> str:
    """One line of JSON for a value shown inside a table or a field list."""
    return json.dumps(value, separators=(", ", ": "), default=str)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """The house table; a cell that is already `Text` keeps its style (live views colour it)."""
    built = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in columns:
        built.add_column(column)
    for row in rows:
        # Text, not str: rich would read `[...]` in an error message or a name as markup.
        built.add_row(*(_cell(cell) for cell in row))
    return built


def _cell(value: Any) -> Text:
    return value if isinstance(value, Text) else Text("" if value is None else str(value))


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # Piped into grep or a file, rows must not be wrapped to rich's default 80 columns.
    width = None if sys.stdout.isatty() else 1000
    Console(width=width).print(table(title, columns, rows))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """`Key:  value` lines, aligned, for one object (`agents get`)."""
    width = max(len(name) for name, _ in fields) + 2
    for name, value in fields:
        click.echo(f"{name + ':':<{width}}{'' if value is None else value}")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(value: str | None, now: datetime | None = None) -> str:
    """`42s`, `7m`, `3h`, `12d`: how long ago, the way kubectl shows it."""
    then = parse_time(value)
    if then is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ago(value: str | None) -> str:
    return f"{age(value)} ago" if value else "never"


def human_bytes(count: float) -> str:
    """`512 B`, `48.3 MiB`: binary units, as `ps` and `top` users read memory."""
    size = float(count)
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"
