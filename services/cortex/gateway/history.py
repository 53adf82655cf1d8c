"""The platform's main figures over the last hour, for the dashboard's charts.

Each figure is defined once (`CHARTS`): the metric it comes from and how (a rate of a counter,
a gauge, quantiles of a histogram). From that follow both ways of getting its history: the
gateway's own samples of every process's `/metrics` (`History`, the embedded default, no
Prometheus needed) and the PromQL for a Prometheus that scrapes the platform (`promql`).

Only the processes that export a figure for the whole platform export it (the lease rule of
docs/metrics.md), so summing over every process is right, also with replicas.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

from cortex.contracts.gateway import MetricSeries, MetricsHistory

Kind = Literal["rate", "gauge", "quantiles"]
QUANTILES = (0.5, 0.95, 0.99)
WINDOWS = {"15m": 900, "1h": 3600}
KEPT_SECONDS = max(WINDOWS.values())


@dataclass(frozen=True, slots=True)
class Chart:
    name: str
    kind: Kind
    metric: str
    unit: str
    by: str | None = None
    """The label that makes one series per value (`status`, `host`); None: one series."""


CHARTS = (
    Chart("messages_per_second", "rate", "cortex_messages_delivered_total", "messages/s"),
    Chart("delivery_latency_seconds", "quantiles", "cortex_messages_delivery_latency_seconds", "s"),
    Chart("agents", "gauge", "cortex_lifecycle_agents", "agents", by="status"),
    Chart("host_cpu_cores", "rate", "cortex_host_cpu_seconds_total", "cores", by="host"),
    Chart("host_memory_bytes", "gauge", "cortex_host_resident_memory_bytes", "bytes", by="host"),
    Chart("executions_per_second", "rate", "cortex_workflow_executions_total", "executions/s"),
)

Labels = tuple[tuple[str, str], ...]
Scrape = dict[tuple[str, Labels], float]
"""One process's samples: (sample name, labels) -> value."""
Point = dict[tuple[str, Labels], float]
"""The figures at one time: (chart name, series labels) -> value."""


def parse(text: str) -> Scrape:
    """The samples of one `/metrics` page that some chart uses."""
    wanted = {chart.metric for chart in CHARTS}
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted or family.name in wanted:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out


def _increase(now: float, before: float | None) -> float | None:
    if before is None:
        return None
    return now - before if now >= before else now  # a restarted process counts from zero


def _grouped(
    scrapes: Iterable[tuple[Scrape, Scrape | None]], sample: str, by: str | None, rate: bool
) -> dict[Labels, float]:
    """Sum of a sample over processes (its increase since the last scrape when `rate`),
    grouped by the label `by`."""
    out: dict[Labels, float] = {}
    for current, previous in scrapes:
        for (name, labels), now in current.items():
            if name != sample:
                continue
            value = _increase(now, previous.get((name, labels))) if previous else None
            if not rate:
                value = now
            if value is None:
                continue
            key: Labels = ((by, dict(labels).get(by, "")),) if by else ()
            out[key] = out.get(key, 0.0) + value
    return out


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of a histogram's cumulative bucket counts (upper bound -> count), as
    Prometheus's histogram_quantile estimates it: linear within the bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def figures(scrapes: list[tuple[Scrape, Scrape | None]], seconds: float | None) -> Point:
    """Every chart's series from the scrapes of every process (with each one's previous
    scrape, None for a process seen for the first time), `seconds` after the previous time."""
    point: Point = {}
    for chart in CHARTS:
        if chart.kind == "gauge":
            for labels, value in _grouped(scrapes, chart.metric, chart.by, rate=False).items():
                point[(chart.name, labels)] = value
        elif seconds is None:
            continue
        elif chart.kind == "rate":
            for labels, value in _grouped(scrapes, chart.metric, chart.by, rate=True).items():
                point[(chart.name, labels)] = value / seconds
        else:
            buckets = _grouped(scrapes, chart.metric + "_bucket", "le", rate=True)
            counts = {float(dict(labels)["le"]): value for labels, value in buckets.items()}
            for q in QUANTILES:
                found = quantile(q, counts)
                if found is not None:
                    point[(chart.name, (("quantile", str(q)),))] = found
    return point


class History:
    """The gateway's samples of the last hour: every process's figures, every `step` s."""

    def __init__(self, step: float) -> None:
        self.step = step
        self._points: deque[tuple[float, Point]] = deque(maxlen=int(KEPT_SECONDS / step) + 1)
        self._last: dict[str, Scrape] = {}
        self._last_time: float | None = None

    def add(self, at: float, scrapes: Mapping[str, Scrape]) -> None:
        """The scrapes of every process reached at time `at`, by process (its URL)."""
        seconds = at - self._last_time if self._last_time is not None else None
        pairs = [(scrape, self._last.get(process)) for process, scrape in scrapes.items()]
        self._points.append((at, figures(pairs, seconds if seconds and seconds > 0 else None)))
        self._last = dict(scrapes)
        self._last_time = at

    def window(self, seconds: int, now: float) -> MetricsHistory:
        points = [(at, point) for at, point in self._points if at >= now - seconds]
        return assemble("gateway", self.step, [at for at, _ in points], [p for _, p in points])


def assemble(
    source: Literal["gateway", "prometheus"],
    step: float,
    times: list[float],
    points: list[Point],
) -> MetricsHistory:
    """Points (one per time) as series with one value per time, ordered as `CHARTS`."""
    units = {chart.name: chart.unit for chart in CHARTS}
    order = {chart.name: i for i, chart in enumerate(CHARTS)}
    keys = sorted({key for point in points for key in point}, key=lambda k: (order[k[0]], k[1]))
    return MetricsHistory(
        source=source,
        step=step,
        times=times,
        series=[
            MetricSeries(
                name=name,
                unit=units[name],
                labels=dict(labels),
                values=[point.get((name, labels)) for point in points],
            )
            for name, labels in keys
        ],
    )


def promql(chart: Chart, rate_window: str = "1m") -> list[tuple[str, Labels]]:
    """The PromQL of a chart's series, with the labels a single-series query gives its result."""
    by = f" by ({chart.by})" if chart.by else ""
    if chart.kind == "gauge":
        return [(f"sum{by} ({chart.metric})", ())]
    if chart.kind == "rate":
        return [(f"sum{by} (rate({chart.metric}[{rate_window}]))", ())]
    return [
        (
            f"histogram_quantile({q}, sum by (le) (rate({chart.metric}_bucket[{rate_window}])))",
            (("quantile", str(q)),),
        )
        for q in QUANTILES
    ]
