"""The metrics as an operator meets them: a real Prometheus (Debian's `prometheus`, which
`make test` installs) started on the configuration `cortex up` writes, scraping a platform that
ran a small workload, and every query of every Grafana dashboard evaluated through its HTTP API.

A query that Prometheus refuses, or that finds nothing once the platform has done what the panel
shows, fails the test with the dashboard, the panel and the query.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually, until
from tests.support.ports import free_port, port_open
from tests.support.stack import FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "charts" / "cortex" / "dashboards").glob("*.json"))
PROMETHEUS = shutil.which("prometheus")

# What Grafana would put in place of its variables, for a dashboard showing the last few
# minutes with every template and host chosen.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "10m"}


def why_no_prometheus() -> str:
    if shutil.which("apt-get") is None:
        return "prometheus is not installed, and there is no apt-get here to install it with"
    if os.geteuid() != 0:
        return (
            "prometheus is not installed, and installing it needs root: "
            "sudo apt-get install -y prometheus"
        )
    return "prometheus is not installed: run `make debian-packages` (tools/install-debian.sh)"


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports."""
    while True:
        first = free_port()
        if not any(port_open(first + n) for n in range(1, count)):
            return first


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if PROMETHEUS is None:
        pytest.skip(why_no_prometheus())
    nodes = 3 if os.environ.get("CORTEX_TEST_TOPOLOGY") == "replicated" else 1
    stack = Stack(
        tmp_path_factory.mktemp("prometheus"),
        CORTEX_AGENT_PATH=str(REPO),
        CORTEX_NATS_MONITOR_PORT=str(free_ports(nodes)),
        CORTEX_METRICS_HISTORY_INTERVAL="1",
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


def workload(stack: Stack) -> None:
    """Agents created and deployed (one that cannot start), messages handled, one dead letter,
    a workflow run, and a request that fails."""
    with stack.client() as api:
        refusing = {"name": "m-refuses", "handler": "tests.support.sample_agents:Refuses"}
        created = api.post("/api/v1/templates", json={**refusing, "max_deliveries": 1})
        assert created.status_code == 201, created.text
        broken = {"name": "m-broken", "handler": "tests.support.sample_agents:BrokenStart"}
        assert api.post("/api/v1/templates", json=broken).status_code == 201
        for name, template in (
            ("m-echo", "echo"),
            ("m-refuses", "m-refuses"),
            ("m-broken", "m-broken"),
        ):
            agent = api.post(
                "/api/v1/agents", json={"name": name, "template": template, "deploy": True}
            )
            assert agent.status_code == 201, agent.text
        eventually(
            lambda: api.get("/api/v1/agents", params={"status": "running"}).json()["total"] >= 2,
            what="both agents running",
        )
        for n in range(5):
            sent = api.post(
                "/api/v1/agents/m-echo/messages", params={"wait": 30}, json={"payload": {"n": n}}
            )
            assert sent.json()["status"] == "replied", sent.text
        dead = api.post(
            "/api/v1/agents/m-refuses/messages", params={"confirm": 30}, json={"payload": "no"}
        )
        assert dead.json()["status"] == "dead_lettered", dead.text
        flow = {
            "name": "m-flow",
            "steps": [
                {"id": "make", "type": "transform", "output": {"n": 1}},
                {"id": "ask", "type": "agent", "agent": "m-echo", "input": "${steps.make.output}"},
            ],
        }
        assert api.post("/api/v1/workflow-templates", json=flow).status_code in (200, 201)
        workflow = api.post("/api/v1/workflows", json={"template": "m-flow"}).json()
        execution = api.post(f"/api/v1/workflows/{workflow['id']}/execute").json()
        eventually(
            lambda: (
                api.get(f"/api/v1/executions/{execution['id']}").json()["status"] == "succeeded"
            ),
            what="the workflow run succeeded",
        )
        assert api.get("/api/v1/agents/nobody-by-that-name").status_code == 404


@pytest.fixture(scope="module")
def prometheus(platform: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on `cortex up`'s own configuration, after the workload."""
    workload(platform)
    assert PROMETHEUS is not None
    config = platform.data_dir / "prometheus" / "prometheus.yml"
    port = free_port()
    storage = tmp_path_factory.mktemp("tsdb")
    log = (storage / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: proc.poll() is None and httpx.get(f"{url}/-/ready").status_code == 200,
            what=f"prometheus ready (log: {storage / 'prometheus.log'})",
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector of `expr` now; fails on whatever Prometheus refuses."""
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = reply.json()
    refused = f"{expr!r}: {body.get('errorType')}: {body.get('error')}"
    assert reply.status_code == 200, refused
    assert body["status"] == "success", refused
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def grafana(expr: str, dashboard: dict[str, Any]) -> str:
    """`expr` as Grafana sends it: its own variables and the dashboard's (all values)."""
    values = dict(GRAFANA_VARIABLES)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable["allValue"]

    def value(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        assert name in values, f"{expr!r} uses ${name}, which is not a variable"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, query) of every target of every panel."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], grafana(target["expr"], dashboard)))
    return found


def test_prometheus_scrapes_every_process_from_the_targets_cortex_up_writes(
    platform: Stack, prometheus: str
) -> None:
    groups = json.loads((platform.data_dir / "prometheus" / "targets.json").read_text())
    components = {group["labels"]["component"] for group in groups}
    assert components == {"gateway", "registry", "lifecycle", "messaging", "workflow"} | {
        "host",
        "nats",
    }
    # Every target answers, under the process names of `cortex up`'s children.
    up = eventually(
        lambda: len(found := query(prometheus, "up == 1")) == len(groups) and found,
        timeout=60,
        what="every target scraped",
    )
    processes = {(s["metric"]["component"], s["metric"]["process"]) for s in up}
    logs = {path.stem for path in (platform.data_dir / "logs").glob("*.log")}
    assert {p for c, p in processes if c != "nats"} <= logs
    # Every nats-server is read, one or the three of a cluster.
    nodes = len(platform.nats_ports)
    servers = eventually(
        lambda: len(found := query(prometheus, "cortex_nats_server_info")) == nodes and found,
        what="every nats-server's figures",
    )
    assert len({s["metric"]["server"] for s in servers}) == nodes


def test_every_dashboard_query_finds_what_the_workload_did(prometheus: str) -> None:
    queries = panel_queries()
    assert len(DASHBOARDS) >= 6
    # Counted series show up over a few scrapes (5 s apart) after the workload: poll, then
    # name what is still empty.
    deadline = time.monotonic() + 90
    empty = queries
    while empty and time.monotonic() < deadline:
        empty = [q for q in empty if not query(prometheus, q[2])]
        if empty:
            time.sleep(2)
    assert not empty, "queries that found nothing:\n" + "\n".join(
        f"  {dashboard} / {panel}: {expr}" for dashboard, panel, expr in empty
    )


def test_every_dashboard_variable_offers_values(prometheus: str) -> None:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
            assert found, variable["query"]
            reply = httpx.get(
                f"{prometheus}/api/v1/label/{found.group(2)}/values",
                params={"match[]": found.group(1)},
            ).json()
            assert reply["status"] == "success", reply
            assert reply["data"], f"{path.name}: ${variable['name']} offers nothing"


def values(prometheus: str, expr: str, label: str = "") -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in query(prometheus, expr)}


BROKEN_STARTS = 'sum(cortex_lifecycle_replica_starts_total{template="m-broken"})'
BROKEN_FAILURES = 'sum(cortex_lifecycle_replica_start_failures_total{template="m-broken"})'
BROKEN_RESTARTS = 'sum(cortex_lifecycle_replica_restarts_total{template="m-broken"})'


def test_the_figures_are_the_workloads_and_the_platforms_counted_once(prometheus: str) -> None:
    expected = {
        # Five requests and the workflow's step to the echo agent, one message refused.
        ("sum by (template) (cortex_messages_sent_total)", "template"): {
            "echo": 6,
            "m-refuses": 1,
        },
        ("sum by (template) (cortex_messages_acked_total)", "template"): {
            "echo": 6,
            "m-refuses": 0,
            "m-broken": 0,
        },
        ("sum by (template) (cortex_messages_dead_lettered_total)", "template"): {
            "echo": 0,
            "m-refuses": 1,
            "m-broken": 0,
        },
        ("sum(cortex_messages_delivery_latency_seconds_count)", ""): {"": 7},
        ("sum(cortex_messaging_dead_letters)", ""): {"": 1},
        ("sum by (status) (cortex_lifecycle_agents)", "status"): {"running": 2, "failed": 1},
        # Every start of the broken agent failed, CORTEX_START_FAILURES (3) of them, the ones
        # after a failure being tries again; then it is `failed` and nothing more starts.
        (f"{BROKEN_STARTS} - {BROKEN_FAILURES}", ""): {"": 0},
        (f"{BROKEN_FAILURES} == bool 3", ""): {"": 1},
        (f"{BROKEN_RESTARTS} == bool 2", ""): {"": 1},
        (
            'sum by (template) (cortex_lifecycle_replica_starts_total{template!="m-broken"})',
            "template",
        ): {"echo": 1, "m-refuses": 1},
        ("sum(cortex_lifecycle_replicas_ready)", ""): {"": 2},
        ('sum(cortex_workflow_executions_total{status="succeeded"})', ""): {"": 1},
        # A figure of the whole platform comes from one process, whatever the replicas.
        ("max(count by (template, status) (cortex_lifecycle_agents))", ""): {"": 1},
        ("count(cortex_messaging_dead_letters)", ""): {"": 1},
        ('count(cortex_registry_hosts{health="healthy"})', ""): {"": 1},
        ("max(count by (partition) (cortex_messaging_inbox_backlog_messages))", ""): {"": 1},
        ("max(count by (stream) (cortex_nats_stream_bytes))", ""): {"": 1},
    }
    for (expr, label), wanted in expected.items():
        until(
            lambda expr=expr, label=label, wanted=wanted: (
                (seen := values(prometheus, expr, label)) == wanted,
                seen,
            ),
            what=f"{expr} = {wanted}",
            timeout=60,
        )


def charts(history: dict[str, Any]) -> dict[tuple[str, str], list[float | None]]:
    """name and first label value of each series -> its values."""
    return {
        (s["name"], next(iter(s["labels"].values()), "")): s["values"] for s in history["series"]
    }


def integral(times: list[float], rates: list[float | None]) -> float:
    """What a per-second series adds up to: each rate over the time since the one before."""
    return sum((b - a) * (r or 0.0) for a, b, r in zip(times, times[1:], rates[1:], strict=False))


def test_the_dashboard_charts_count_the_workload_from_the_gateway_and_from_prometheus(
    platform: Stack, prometheus: str
) -> None:
    """`GET /api/v1/metrics/history`: sampled by the gateway every second here (no
    Prometheus needed), and the same charts read from Prometheus with CORTEX_PROMETHEUS_URL."""
    with platform.client() as api:

        def history() -> dict[str, Any]:
            found: dict[str, Any] = api.get("/api/v1/metrics/history").json()
            return found

        def delivered(seen: dict[str, Any]) -> float:
            rates = charts(seen).get(("messages_per_second", ""), [])
            return round(integral(seen["times"], rates), 6)

        # Both have read the counters once before the messages: they see them increase.
        eventually(
            lambda: query(prometheus, "cortex_messages_delivered_total"),
            what="Prometheus's first scrape of the agent host",
        )
        before = until(
            lambda: (len((seen := history())["times"]) >= 2, seen),
            what="the gateway's first samples",
        )
        for n in range(3):
            sent = api.post(
                "/api/v1/agents/m-echo/messages", params={"wait": 30}, json={"payload": n}
            )
            assert sent.json()["status"] == "replied", sent.text
        # The deliveries since the last sample seen are counted, exactly; the agent that
        # cannot start ends failed after its tries.
        seen = until(
            lambda: (
                delivered(now := history()) - delivered(before) == 3
                and charts(now).get(("agents", "failed"), [None])[-1] == 1,
                now,
            ),
            what="three more messages and the failed agent in the gateway's history",
        )
    assert seen["source"] == "gateway"
    found = charts(seen)
    assert found[("agents", "running")][-1] == 2
    assert any(v for (name, _), vs in found.items() if name == "host_memory_bytes" for v in vs)
    assert any(v for v in found[("delivery_latency_seconds", "0.5")])

    from cortex.gateway.history_sources import PrometheusHistory

    def from_prometheus() -> tuple[bool, Any]:
        read = asyncio.run(PrometheusHistory(prometheus).window(900))
        latest = {(s.name, tuple(s.labels.values())): s.values for s in read.series}
        running = [v for v in latest.get(("agents", ("running",)), []) if v is not None]
        done = (
            bool(running)
            and running[-1] == 2
            and any(latest.get(("messages_per_second", ()), []))
            and any(latest.get(("delivery_latency_seconds", ("0.5",)), []))
        )
        measured = {k: [v for v in values if v is not None][-3:] for k, values in latest.items()}
        return done, (read, measured)

    read, _ = until(from_prometheus, what="the charts from Prometheus", timeout=60)
    assert read.source == "prometheus"
    assert {s.name for s in read.series} == {s["name"] for s in seen["series"]}


def test_a_restarted_process_is_scraped_on_its_new_port(platform: Stack) -> None:
    """Runs last: it restarts a workflow process of the shared platform."""
    targets = platform.data_dir / "prometheus" / "targets.json"

    def workflow_targets() -> dict[str, str]:
        groups = json.loads(targets.read_text())
        return {
            g["labels"]["process"]: g["targets"][0]
            for g in groups
            if g["labels"]["component"] == "workflow"
        }

    before = workflow_targets()
    name = sorted(before)[0]
    platform.kill(name)
    until(
        lambda: (
            (now := workflow_targets()).keys() == before.keys() and now[name] != before[name],
            now,
        ),
        what=f"{name} listed on its new admin port",
        timeout=60,
    )
