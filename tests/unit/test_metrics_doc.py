"""docs/metrics.md is what the code declares, and the code declares every metric it exports,
by the platform's naming and label rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from cortex.kernel import metrics_doc
from cortex.kernel.metrics import AGENT, CATALOGUE

NAME = re.compile(r"cortex_[a-z]+(?:_[a-z0-9]+)+")
PER_ENTITY = {"agent_id", "instance_id", "msg_id", "message_id", "execution_id", "id"}
"""Labels whose values grow with the fleet: never (an agent's id goes in `agent`, empty unless
per-agent series are on)."""


def test_the_committed_metrics_document_is_current() -> None:
    assert metrics_doc.DOC.exists(), "run `make contracts`"
    assert metrics_doc.DOC.read_text() == metrics_doc.render(), (
        "docs/metrics.md is stale; run `make contracts`"
    )


def registered() -> dict[str, MetricWrapperBase]:
    """Every metric object registered in this process, by the name its series carry."""
    metrics_doc.load_everything()
    found: dict[str, MetricWrapperBase] = {}
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase):
            suffix = "_total" if collector._type == "counter" else ""
            found[collector._name + suffix] = collector
    return found


def test_every_registered_metric_of_the_platform_is_in_the_catalogue() -> None:
    for name, metric in registered().items():
        if not name.startswith("cortex_"):
            continue
        assert name in CATALOGUE, f"{name} is not declared with cortex.kernel.metrics"
        doc = CATALOGUE[name]
        assert doc.kind == metric._type, name
        assert doc.labels == tuple(metric._labelnames), name


def test_names_and_labels_follow_the_rules() -> None:
    metrics_doc.load_everything()
    for doc in CATALOGUE.values():
        if not doc.name.startswith("cortex_"):
            continue
        assert NAME.fullmatch(doc.name), f"{doc.name}: cortex_<area>_<thing>_<unit>"
        assert (doc.kind == "counter") == doc.name.endswith("_total"), doc.name
        assert not PER_ENTITY & set(doc.labels), f"{doc.name}: a label per agent or message"
        assert doc.help, doc.name
        assert doc.exported_by, doc.name


def test_the_gateway_http_metrics_are_as_documented(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from cortex.gateway.app import create_app
    from cortex.gateway.state import Gateway
    from cortex.kernel.settings import load_settings

    settings = load_settings({"CORTEX_DATA_DIR": str(tmp_path)})
    with TestClient(create_app(Gateway(settings))) as client:
        client.get("/health")  # the middleware makes its metrics at the first request
    seen = {
        sample.name: frozenset(sample.labels)
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name.startswith("cortex_gateway_")
    }
    for name in ("cortex_gateway_requests_total", "cortex_gateway_request_duration_seconds"):
        for series, labels in CATALOGUE[name].series().items():
            assert seen.get(series) == labels, series


def test_the_host_gauges_are_as_documented() -> None:
    from cortex.host.metrics import HostGauges

    gauges = HostGauges("host-1", lambda: [("running", 2), ("running", 1), ("stopping", 0)])
    try:
        families = {family.name: family for family in gauges.collect()}
    finally:
        gauges.close()
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    running = ("cortex_host_replicas", (("host", "host-1"), ("state", "running")))
    assert values[running] == 2
    assert values[("cortex_host_inflight_messages", (("host", "host-1"),))] == 3
    for family in families.values():
        for sample in family.samples:
            assert sample.name in CATALOGUE[_documented(sample.name)].series()


def _documented(series: str) -> str:
    return series if series in CATALOGUE else series.removesuffix("_total") + "_total"


def test_agent_label_is_empty_unless_per_agent_series_are_on() -> None:
    from cortex.contracts.hosts import ReplicaSpec
    from cortex.host.metrics import ReplicaMetrics
    from cortex.kernel.metrics import AgentLabel

    spec = ReplicaSpec(
        instance_id="i-1",
        agent_id="a-1",
        agent_name="one",
        template="echo-for-labels",
        template_version="1",
        handler="x:Y",
        config={},
    )
    ReplicaMetrics(spec, AgentLabel(False)).acked.inc()
    ReplicaMetrics(spec, AgentLabel(True)).acked.inc()
    samples = [
        s.labels
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == "cortex_messages_acked_total" and s.labels["template"] == "echo-for-labels"
    ]
    assert sorted(s[AGENT] for s in samples) == ["", "a-1"]


# --- the NATS servers' figures -----------------------------------------------------------------


def nats_pages(server: str, leader: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The monitoring pages of one node, trimmed to what is read, as nats-server 2.15 writes
    them: the stream CORTEX_MSGS led by `leader`, its durable consumer and an ordered one."""
    varz = {"server_name": server, "version": "2.15.1", "cluster": {"name": "cortex"}, "mem": 9}
    consumer = {
        "name": "inbox-0",
        "config": {"durable_name": "inbox-0"},
        "cluster": {"leader": leader},
        "num_pending": 4,
        "delivered": {"consumer_seq": 7},
    }
    ordered = {"name": "x1Y2", "config": {}, "num_pending": 1}
    stream = {
        "name": "CORTEX_MSGS",
        "cluster": {"leader": leader},
        "state": {"messages": 5, "bytes": 500, "consumer_count": 2},
        "consumer_detail": [consumer, ordered],
    }
    other = {"name": "OTHER_PLATFORM_MSGS", "cluster": {"leader": server}, "state": {}}
    jsz = {"account_details": [{"stream_detail": [stream, other]}]}
    connz = {
        "connections": [
            {"name": "cortex-host", "pending_bytes": 10},
            {"name": "cortex-host", "pending_bytes": 5},
            {"name": "someone-else", "pending_bytes": 99},
        ]
    }
    return varz, jsz, connz


def test_nats_figures_count_each_stream_once_on_its_leader() -> None:
    from cortex.gateway.nats_metrics import NatsMetrics, _Families
    from cortex.kernel.settings import load_settings

    settings = load_settings({}, nats_monitor_urls="http://n1:8222,http://n2:8222")
    exporter = NatsMetrics(settings, lambda: pytest.fail("no NATS in this test"))
    families = _Families()
    for server in ("cortex-n1", "cortex-n2"):
        varz, jsz, connz = nats_pages(server, leader="cortex-n2")
        exporter._server(families, varz)
        exporter._streams_of(families, server, jsz)
        exporter._clients(families, server, connz)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.collect()
        for s in family.samples
    }
    streams = {k: v for k, v in samples.items() if k[0] == "cortex_nats_stream_bytes"}
    assert streams == {
        ("cortex_nats_stream_bytes", (("server", "cortex-n2"), ("stream", "CORTEX_MSGS"))): 500
    }
    consumers = {
        k: v for k, v in samples.items() if k[0] == "cortex_nats_consumer_pending_messages"
    }
    assert list(consumers.values()) == [4], "only the durable consumer, on its leader"
    hosts = ("cortex_nats_client_connections", (("client", "cortex-host"), ("server", "cortex-n1")))
    assert samples[hosts] == 2
    assert not any("someone-else" in str(k) for k in samples)
    memory = ("cortex_nats_server_memory_bytes", (("server", "cortex-n1"),))
    assert samples[memory] == 9
