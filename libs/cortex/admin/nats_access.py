"""How the admin tools reach NATS: the platform's own NATS as its operator (`admin` role), or,
for a restore into a new data directory, a NATS of their own on that directory while they work.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from nats.aio.client import Client as NATS

from cortex.kernel.bus.connection import connect
from cortex.kernel.settings import Settings, redact_url

CONNECT_TIMEOUT = 15.0


class AdminError(RuntimeError):
    """What the operator must change for a backup or a restore to run; the message says it."""


def as_admin(settings: Settings) -> Settings:
    """`settings` signed in as the `admin` role: its seed where `cortex up` keeps it, unless
    CORTEX_NATS_NKEY names one."""
    seed = settings.data_path / "nats" / "auth" / "admin.nk"
    if settings.nats_nkey or not seed.exists():
        return settings
    return msgspec.structs.replace(settings, nats_nkey=str(seed), nats_inbox_prefix="_INBOX")


@contextlib.asynccontextmanager
async def admin_connection(settings: Settings, name: str) -> AsyncIterator[NATS]:
    admin = as_admin(settings)
    try:
        nc = await connect(admin, name, first_connect_timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        url = redact_url(admin.effective_nats_url)
        raise AdminError(
            f"cannot reach NATS at {url}: {exc or type(exc).__name__} (is the platform "
            "running? CORTEX_NATS_URL names another NATS)"
        ) from None
    try:
        yield nc
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def own_nats(settings: Settings) -> AsyncIterator[Settings]:
    """The nats-server(s) `cortex up` would start on the data dir, started here for as long as
    the block runs, with the same users, and the data dir locked against a `cortex up`; yields
    settings that reach them as `admin`."""
    # Imported here: only a restore into a data dir of its own needs the embedded platform.
    from cortex.embedded.up import UpError, data_dir_lock, prepare_data_dir

    try:
        data_dir = prepare_data_dir(settings.data_path)
        with data_dir_lock(data_dir):
            async with _nats_on(settings, data_dir) as reached:
                yield reached
    except UpError as exc:
        raise AdminError(str(exc)) from None


@contextlib.asynccontextmanager
async def _nats_on(settings: Settings, data_dir: Path) -> AsyncIterator[Settings]:
    from cortex.embedded.nats_auth import ensure_keys, render_authorization
    from cortex.embedded.supervisor import Supervisor
    from cortex.embedded.up import (
        check_nats_ports,
        nats_server_configs,
        start_nats_servers,
        stream_replicas,
    )

    keys = ensure_keys(data_dir / "nats" / "auth", settings.subjects())
    configs = nats_server_configs(settings, data_dir, render_authorization(keys))
    check_nats_ports(configs, settings.http_port)
    supervisor = Supervisor(data_dir / "logs", io.StringIO(), grace=settings.shutdown_grace)
    try:
        await start_nats_servers(
            supervisor,
            configs,
            data_dir,
            tls=settings.nats_tls(),
            nkey=str(keys["admin"].seed_path),
        )
        yield msgspec.structs.replace(
            settings,
            nats_url=",".join(conf.url for conf in configs),
            nats_replicas=stream_replicas(settings),
            nats_nkey=str(keys["admin"].seed_path),
            nats_inbox_prefix="_INBOX",
        )
    finally:
        await supervisor.stop()


def nats_store_exists(data_dir: Path) -> bool:
    return (data_dir / "nats" / "jetstream").exists() or any(
        (data_dir / "nats").glob("n*/jetstream")
    )
