"""`cortex admin`: backup and restore, run by an operator next to the platform (docs/operations.md,
"Backup and restore")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from cortex.cli.client import CliError
from cortex.cli.common import friendly, settings_or_exit


@click.group()
def admin() -> None:
    """Operate on the platform's data directly: backup and restore.

    They read CORTEX_STORE (or the data dir's stores), and CORTEX_NATS_URL (or the NATS of
    `cortex up` on CORTEX_NATS_PORT, signed in with the data dir's admin seed).
    """


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@admin.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--logs", is_flag=True, help="Include the central log stream (CORTEX_LOGS).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="Print the summary only.")
@friendly
def backup(file: Path, logs: bool, force: bool, quiet: bool) -> None:
    """Write a consistent archive of the running platform to FILE: every service's events,
    and the JetStream streams they do not hold (inboxes, dead letters, message statuses,
    handled ids, large payloads) with their consumers' positions."""
    from cortex.admin.backup import backup as run_backup
    from cortex.admin.jetstream_snapshots import SnapshotError
    from cortex.admin.nats_access import AdminError

    if file.exists() and not force:
        raise CliError(f"{file} exists: give another FILE, or --force to replace it")
    if not file.parent.is_dir():
        raise CliError(f"{file.parent} is not a directory")
    say = (lambda _: None) if quiet else (lambda line: click.echo(f"backup: {line}", err=True))
    try:
        report = asyncio.run(run_backup(settings_or_exit(), file, logs=logs, say=say))
    except (AdminError, SnapshotError) as exc:
        raise CliError(str(exc)) from None
    click.echo(
        f"wrote {file} ({_mb(report.size)}): {report.events} events, {report.streams} streams "
        f"({_mb(report.stream_bytes)}) in {report.seconds:.1f}s"
    )


@admin.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="Print the summary only.")
@friendly
def restore(file: Path, quiet: bool) -> None:
    """Bring the backup FILE back into an empty platform: a new data dir (CORTEX_DATA_DIR),
    or an empty NATS (CORTEX_NATS_URL) and empty event stores (CORTEX_STORE). Start the
    platform afterwards: its services rebuild their read models from the events."""
    from cortex.admin.archive import ArchiveError
    from cortex.admin.jetstream_snapshots import SnapshotError
    from cortex.admin.nats_access import AdminError
    from cortex.admin.restore import restore as run_restore

    say = (lambda _: None) if quiet else (lambda line: click.echo(f"restore: {line}", err=True))
    try:
        report = asyncio.run(run_restore(settings_or_exit(), file, say=say))
    except (AdminError, ArchiveError, SnapshotError) as exc:
        raise CliError(str(exc)) from None
    click.echo(
        f"restored {file}: {report.events} events, {report.streams} streams in "
        f"{report.seconds:.1f}s; start the platform (cortex up) to use it"
    )


@admin.command("migrate")
@friendly
def migrate() -> None:
    """Bring every service's event store to the schema this version knows (tables,
    collections, indexes), recorded in the store; idempotent. Services do it for their own
    store when they start, and refuse a store newer than they know: run this ahead of a
    rollout to find that out before the services do."""
    from cortex.admin.migrate import migrate as run_migrate

    for done in asyncio.run(run_migrate(settings_or_exit())):
        change = (
            f"schema {done.before} -> {done.after}"
            if done.before != done.after
            else f"at schema {done.after}, nothing to do"
        )
        click.echo(f"{done.service}: {done.location}: {change}")
