"""The ports of the platform itself, which `http` steps may not reach on internal addresses.

Known from the settings: the gateway's, NATS's and NATS monitoring's. Found while running: the
admin ports every process picks at start, which each lists in its `$SRV.INFO` metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cortex.kernel.settings import Settings

PORTS_INTERVAL = 15.0
"""Seconds between looks for the admin ports of processes started since."""


def own_ports(settings: Settings) -> set[int]:
    ports = {settings.http_port, settings.nats_port, settings.nats_monitor_port}
    # A three-node cluster from `cortex up` takes the two ports after each.
    ports |= {settings.nats_port + n for n in range(settings.nats_cluster)}
    ports |= {settings.nats_monitor_port + n for n in range(settings.nats_cluster)}
    if settings.admin_port:
        ports.add(settings.admin_port)
    urls = [*settings.nats_url.split(","), *settings.nats_monitor_urls.split(",")]
    return (ports | {p for url in urls if (p := _port(url))}) - {0}


def ports_in(infos: list[Any], prefix: str) -> set[int]:
    """Every port named in the metadata of this platform's processes (`admin_url`,
    `http_url`)."""
    found = set()
    for info in infos:
        if not isinstance(info, dict) or not str(info.get("name", "")).startswith(prefix):
            continue
        meta = info.get("metadata") or {}
        for key in ("admin_url", "http_url"):
            if port := _port(str(meta.get(key, ""))):
                found.add(port)
    return found


def _port(url: str) -> int | None:
    try:
        return urlsplit(url.strip()).port if url.strip() else None
    except ValueError:
        return None
