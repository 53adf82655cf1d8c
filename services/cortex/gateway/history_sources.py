"""Where the metrics history comes from: the gateway's own samples of every process's
`/metrics`, or a Prometheus (CORTEX_PROMETHEUS_URL). Both answer `window()` alike."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from nats.aio.client import Client as NATS

from cortex.contracts.gateway import MetricsHistory
from cortex.embedded.prometheus import target_groups
from cortex.gateway.history import CHARTS, History, Point, Scrape, assemble, parse, promql
from cortex.kernel.bus.discovery import scatter
from cortex.kernel.errors import CortexError, Unavailable
from cortex.kernel.logging import get_logger
from cortex.kernel.settings import Settings
from cortex.kernel.waiting import cancel_and_wait

log = get_logger()

PROMETHEUS_POINTS = 180
"""Points per chart asked of Prometheus, whatever the window: enough for a chart's width."""


class SampledHistory:
    """Samples every process of the platform every `metrics_history_interval` seconds and
    keeps an hour. Each gateway replica keeps its own, from its start."""

    def __init__(self, settings: Settings, connection: Callable[[], NATS]) -> None:
        self.history = History(settings.metrics_history_interval)
        self._connection = connection
        self._prefix = settings.subjects().root + "-"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def window(self, seconds: int) -> MetricsHistory:
        return self.history.window(seconds, time.time())

    async def _run(self) -> None:
        step = self.history.step
        async with httpx.AsyncClient(timeout=min(2.0, step)) as client:
            while True:
                began = time.monotonic()
                try:
                    await self.sample(client)
                except (CortexError, OSError) as exc:  # NATS not there yet, or going away
                    log.debug("metrics history: no sample", reason=str(exc))
                await asyncio.sleep(max(0.0, step - (time.monotonic() - began)))

    async def sample(self, client: httpx.AsyncClient) -> None:
        infos = await scatter(self._connection(), "$SRV.INFO")
        targets = [
            g["targets"][0] for g in target_groups(infos, self._prefix, {}, nats_metrics=False)
        ]
        at = time.time()
        pages = await asyncio.gather(*(self._scrape(client, t) for t in targets))
        self.history.add(at, {t: page for t, page in zip(targets, pages, strict=True) if page})

    @staticmethod
    async def _scrape(client: httpx.AsyncClient, target: str) -> Scrape | None:
        try:
            response = await client.get(f"http://{target}/metrics")
            response.raise_for_status()
        except httpx.HTTPError:
            return None  # a process stopping or restarting: its figures resume with it
        return parse(response.text)


class PrometheusHistory:
    """The same charts read from a Prometheus that scrapes the platform."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def window(self, seconds: int) -> MetricsHistory:
        step = float(max(1, math.ceil(seconds / PROMETHEUS_POINTS)))
        end = math.floor(time.time() / step) * step
        start = end - seconds
        times = [start + i * step for i in range(int(seconds / step) + 1)]
        points: list[Point] = [{} for _ in times]
        async with httpx.AsyncClient(timeout=10.0) as client:
            for chart in CHARTS:
                for query, fixed in promql(chart):
                    for found in await self._query(client, query, start, end, step):
                        labels = dict(found.get("metric") or {})
                        key = fixed or (((chart.by, labels.get(chart.by, "")),) if chart.by else ())
                        for at, value in found.get("values") or []:
                            index = round((float(at) - start) / step)
                            number = float(value)
                            if 0 <= index < len(points) and not math.isnan(number):
                                points[index][(chart.name, key)] = number
        return assemble("prometheus", step, times, points)

    async def _query(
        self, client: httpx.AsyncClient, query: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": query, "start": start, "end": end, "step": step}
        try:
            response = await client.get(f"{self.url}/api/v1/query_range", params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"Prometheus at {self.url} did not answer: {exc}") from None
        if body.get("status") != "success":
            raise Unavailable(f"Prometheus at {self.url} refused {query!r}: {body.get('error')}")
        result = body.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []
