"""What Prometheus needs to scrape a platform `cortex up` runs, kept in the data dir:

- `prometheus/targets.json`: every process's admin port (`/metrics`), and the gateway's
  `/metrics/nats` for the NATS servers, in Prometheus' file service discovery format. Every
  process picks its admin port when it starts, so the file is rewritten whenever what the
  processes say about themselves changes (a restarted child comes back on another port);
- `prometheus/prometheus.yml`: a configuration that scrapes what the file lists, every few
  seconds.

The processes are found as `/api/v1/status` finds them: each lists its `admin_url` in its
`$SRV.INFO` metadata.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nats.aio.client import Client as NATS

from cortex.kernel.bus.connection import connect, disconnect
from cortex.kernel.bus.discovery import scatter
from cortex.kernel.logging import get_logger
from cortex.kernel.settings import Settings
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

REFRESH = 2.0
"""Seconds between looks at which processes run where."""
NATS_METRICS_PATH = "/metrics/nats"
"""Where the gateway serves the NATS servers' figures (`cortex.gateway.nats_metrics`)."""

CONFIG = """\
# Written by `cortex up` at every start: Prometheus scraping every process of the platform in
# this data dir. The processes are listed in targets.json, next to this file, which `cortex up`
# keeps current while it runs. Run (see docs/observability.md):
#   prometheus --config.file={config} --storage.tsdb.path=<a directory> \\
#       --web.listen-address=127.0.0.1:9090
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
scrape_configs:
  - job_name: cortex
    file_sd_configs:
      - files: [targets.json]
        refresh_interval: 5s
"""


def config_path(data_dir: Path) -> Path:
    return data_dir / "prometheus" / "prometheus.yml"


def target_groups(
    infos: list[Any], prefix: str, names: dict[str, str], *, nats_metrics: bool
) -> list[dict[str, Any]]:
    """Prometheus target groups of the processes whose `$SRV.INFO` is in `infos` (those of
    the platform whose service names start with `prefix`). `names`: pid -> the supervisor's
    name of the process (`registry-1`); `nats_metrics`: the gateway serves the NATS metrics."""
    groups = []
    for info in infos:
        if not str(info.get("name", "")).startswith(prefix):
            continue
        meta = info.get("metadata") or {}
        admin = urlsplit(str(meta.get("admin_url", "")))
        if not admin.hostname or not admin.port:
            continue
        component = str(meta.get("service", ""))
        process = names.get(str(meta.get("pid", "")), meta.get("host_id", component))
        target = f"{admin.hostname}:{admin.port}"
        groups.append({"targets": [target], "labels": {"component": component, "process": process}})
        if component == "gateway" and nats_metrics:
            groups.append(
                {
                    "targets": [target],
                    "labels": {
                        "component": "nats",
                        "process": process,
                        "__metrics_path__": NATS_METRICS_PATH,
                    },
                }
            )
    return sorted(groups, key=lambda g: (g["labels"]["component"], g["labels"]["process"]))


def write_if_changed(path: Path, text: str) -> bool:
    """Replace the file at once (Prometheus never reads half of it); False when unchanged."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)
    return True


class ScrapeTargets:
    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        names: Callable[[], dict[str, str]],
        *,
        nats_metrics: bool,
    ) -> None:
        """`names()`: pid -> supervisor name of every child now; `nats_metrics`: the gateway
        was given the NATS servers' monitoring URLs."""
        self._settings = settings
        self.config = config_path(data_dir)
        self.targets = self.config.parent / "targets.json"
        self._names = names
        self._nats_metrics = nats_metrics
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Write both files, then keep the targets current until `stop`."""
        write_if_changed(self.config, CONFIG.format(config=self.config))
        self._nc = await connect(self._settings, f"{self._settings.subjects().root}-up")
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="prometheus-targets")

    async def refresh(self) -> None:
        assert self._nc is not None
        infos = await scatter(self._nc, "$SRV.INFO")
        groups = target_groups(
            infos,
            f"{self._settings.subjects().root}-",
            self._names(),
            nats_metrics=self._nats_metrics,
        )
        write_if_changed(self.targets, json.dumps(groups, indent=2) + "\n")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            try:
                await self.refresh()
            except Exception as exc:  # NATS away for a moment: the file keeps the last list
                log.debug("scrape targets not refreshed", error=str(exc) or repr(exc))

    async def stop(self) -> None:
        if self._task is not None:
            # A cancellation scatter's wait_for drops would leave one cancel() waiting for
            # good: `cortex up` once hung there at Ctrl-C.
            await cancel_and_wait(self._task)
        if self._nc is not None:
            await disconnect(self._nc, 2.0)
