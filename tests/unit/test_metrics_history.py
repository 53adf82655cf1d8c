"""The dashboard's charts from scrapes of every process: rates summed over processes, counter
resets, gauges by label, latency quantiles as Prometheus estimates them, an hour kept."""

from __future__ import annotations

import math

import pytest

from cortex.gateway.history import CHARTS, History, parse, promql, quantile


def page(delivered: float, cpu: float, memory: float, le: dict[str, float]) -> str:
    buckets = "\n".join(
        f'cortex_messages_delivery_latency_seconds_bucket{{template="echo",le="{b}"}} {n}'
        for b, n in le.items()
    )
    return f"""\
# TYPE cortex_messages_delivered_total counter
cortex_messages_delivered_total{{template="echo",agent=""}} {delivered}
# TYPE cortex_host_cpu_seconds_total counter
cortex_host_cpu_seconds_total{{host="h1"}} {cpu}
# TYPE cortex_host_resident_memory_bytes gauge
cortex_host_resident_memory_bytes{{host="h1"}} {memory}
# TYPE cortex_messages_delivery_latency_seconds histogram
{buckets}
# TYPE cortex_gateway_requests_total counter
cortex_gateway_requests_total{{path="/"}} 7
"""


LIFECYCLE = """\
# TYPE cortex_lifecycle_agents gauge
cortex_lifecycle_agents{template="echo",status="running"} 3
cortex_lifecycle_agents{template="other",status="running"} 2
cortex_lifecycle_agents{template="other",status="failed"} 1
"""


def series(history: History) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[float | None]]:
    shown = history.window(3600, now=1000.0)
    return {(s.name, tuple(sorted(s.labels.items()))): s.values for s in shown.series}


def test_rates_gauges_and_quantiles_over_every_process() -> None:
    history = History(step=10)
    first = {"0.1": 0, "0.5": 0, "+Inf": 0}
    history.add(900.0, {"host-a": parse(page(100, 5, 2e8, first)), "life": parse(LIFECYCLE)})
    later = {"0.1": 40, "0.5": 80, "+Inf": 100}
    history.add(910.0, {"host-a": parse(page(300, 7, 3e8, later)), "life": parse(LIFECYCLE)})

    found = series(history)
    assert found[("messages_per_second", ())] == [None, 20.0], "200 more in 10 s"
    assert found[("host_cpu_cores", (("host", "h1"),))] == [None, 0.2]
    assert found[("host_memory_bytes", (("host", "h1"),))] == [2e8, 3e8]
    assert found[("agents", (("status", "running"),))] == [5, 5], "summed over templates"
    assert found[("agents", (("status", "failed"),))] == [1, 1]
    # 100 deliveries: 40 up to 0.1 s, 40 more up to 0.5 s, 20 slower. The median is the
    # 50th: 10 of the 40 in (0.1, 0.5], a quarter of the way.
    assert found[("delivery_latency_seconds", (("quantile", "0.5"),))] == [None, 0.2]
    assert found[("delivery_latency_seconds", (("quantile", "0.95"),))] == [None, 0.5]
    assert not any(name.startswith("cortex_gateway") for name, _ in found)


def test_a_restarted_process_counts_from_zero_and_a_new_one_from_its_first_scrape() -> None:
    history = History(step=10)
    buckets = {"+Inf": 0}
    history.add(900.0, {"host-a": parse(page(500, 5, 1, buckets))})
    # host-a restarted (its counter went back to 30); host-b is new.
    history.add(
        910.0, {"host-a": parse(page(30, 1, 1, buckets)), "host-b": parse(page(900, 1, 1, buckets))}
    )
    assert series(history)[("messages_per_second", ())] == [None, 3.0]


def test_an_hour_is_kept_and_a_window_shows_its_part() -> None:
    history = History(step=60)
    for minute in range(90):
        history.add(minute * 60.0, {"life": parse(LIFECYCLE)})
    hour = history.window(3600, now=89 * 60.0)
    assert len(hour.times) == 61
    assert hour.times[0] == 29 * 60.0
    quarter = history.window(900, now=89 * 60.0)
    assert len(quarter.times) == 16
    assert all(len(s.values) == 16 for s in quarter.series)


def test_quantiles_follow_prometheus() -> None:
    assert quantile(0.5, {1.0: 0, math.inf: 0}) is None
    assert quantile(0.5, {1.0: 10, 2.0: 20, math.inf: 20}) == 1.0
    assert quantile(0.99, {1.0: 10, math.inf: 20}) == 1.0, "the +Inf bucket: its lower bound"
    assert quantile(0.25, {1.0: 10, 2.0: 20, math.inf: 20}) == pytest.approx(0.5)


def test_every_chart_has_its_promql() -> None:
    queries = {chart.name: promql(chart) for chart in CHARTS}
    assert queries["agents"] == [("sum by (status) (cortex_lifecycle_agents)", ())]
    assert queries["messages_per_second"] == [
        ("sum (rate(cortex_messages_delivered_total[1m]))", ())
    ]
    assert len(queries["delivery_latency_seconds"]) == 3
