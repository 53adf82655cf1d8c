"""Writes the Grafana dashboards of charts/cortex/dashboards/ from the definitions below.

    python tools/dashboards.py           # write them
    python tools/dashboards.py --check   # exit 1 if a committed one differs (tests run this)

Written from code so that every panel has the same shape: a title, a description, a unit, the
data source variable `${datasource}`, and queries that the chart's tests check against the
metrics the code declares (docs/metrics.md) and that tests/e2e/test_prometheus.py evaluates
against a real Prometheus. Edit here, not in the JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "charts" / "cortex" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"


@dataclass
class Panel:
    title: str
    description: str
    unit: str
    queries: list[tuple[str, str]]
    """(PromQL, legend)."""
    kind: str = "timeseries"
    width: int = 12
    stacked: bool = False

    @property
    def height(self) -> int:
        return 4 if self.kind == "stat" else 8


def stat(title: str, description: str, unit: str, expr: str, legend: str = "") -> Panel:
    return Panel(title, description, unit, [(expr, legend)], kind="stat", width=6)


def graph(
    title: str, description: str, unit: str, *queries: tuple[str, str], stacked: bool = False
) -> Panel:
    return Panel(title, description, unit, list(queries), stacked=stacked)


@dataclass
class Row:
    title: str
    panels: list[Panel]


@dataclass
class Variable:
    name: str
    label: str
    metric: str
    """`label_values(<metric>, <name>)`: the values offered."""


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[Row]
    variables: list[Variable] = field(default_factory=list)


def quantile(q: float, metric: str, by: str = "", matcher: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{matcher}{RATE})))"


def ratio(errors: str, total: str) -> str:
    """Errors over all: 0 when no error series exists yet (none happened), not "no data"."""
    return f"(sum(rate({errors}{RATE})) or vector(0)) / sum(rate({total}{RATE}))"


T = '{template=~"$template"}'
H = '{host=~"$host"}'

OVERVIEW = Dashboard(
    "cortex-overview",
    "Cortex / Overview",
    "The platform at a glance: processes, agents, messages, errors, latency, dead letters and "
    "workflow executions.",
    [
        Row(
            "Health",
            [
                stat(
                    "Processes up",
                    "Processes Prometheus scrapes that answered its last scrape (gateway, "
                    "services, agent hosts, the NATS metrics).",
                    "short",
                    "sum(up)",
                ),
                stat(
                    "Processes down",
                    "Scrape targets that did not answer their last scrape: a process that is "
                    "gone or restarting.",
                    "short",
                    "count(up == 0) or vector(0)",
                ),
                stat(
                    "Dead letters",
                    "Messages in the dead-letter queue, waiting for a replay or a delete.",
                    "short",
                    "sum(cortex_messaging_dead_letters)",
                ),
                stat(
                    "Running executions",
                    "Workflow executions whose runner is running now, over every workflow replica.",
                    "short",
                    "sum(cortex_workflow_executions_running)",
                ),
            ],
        ),
        Row(
            "Agents and messages",
            [
                graph(
                    "Agents by status",
                    "Agents of every template by lifecycle status.",
                    "short",
                    ("sum by (status) (cortex_lifecycle_agents)", "{{status}}"),
                    stacked=True,
                ),
                graph(
                    "Messages / s",
                    "Messages stored in agents' inboxes, reaching a handler, handled "
                    "successfully, failing and dead-lettered, per second.",
                    "ops",
                    (f"sum(rate(cortex_messages_sent_total{RATE}))", "sent"),
                    (f"sum(rate(cortex_messages_delivered_total{RATE}))", "delivered"),
                    (f"sum(rate(cortex_messages_acked_total{RATE}))", "acked"),
                    (f"sum(rate(cortex_messages_failed_total{RATE}))", "failed"),
                    (f"sum(rate(cortex_messages_dead_lettered_total{RATE}))", "dead-lettered"),
                ),
                graph(
                    "Error rates",
                    "Share of gateway responses that are 5xx, of service requests answered "
                    "with an error, and of handler runs that raised.",
                    "percentunit",
                    (
                        ratio(
                            'cortex_gateway_requests_total{status_code=~"5.."}',
                            "cortex_gateway_requests_total",
                        ),
                        "gateway 5xx",
                    ),
                    (
                        ratio(
                            'cortex_service_requests_total{code!="ok"}',
                            "cortex_service_requests_total",
                        ),
                        "service errors",
                    ),
                    (
                        f"sum(rate(cortex_messages_failed_total{RATE})) / "
                        f"sum(rate(cortex_messages_delivered_total{RATE}))",
                        "handler failures",
                    ),
                ),
                graph(
                    "p99 latencies",
                    "99th percentile of gateway responses, service requests, message "
                    "delivery (creation to handler start) and handler runs.",
                    "s",
                    (quantile(0.99, "cortex_gateway_request_duration_seconds"), "gateway"),
                    (quantile(0.99, "cortex_service_request_duration_seconds"), "services"),
                    (quantile(0.99, "cortex_messages_delivery_latency_seconds"), "delivery"),
                    (quantile(0.99, "cortex_messages_handler_duration_seconds"), "handlers"),
                ),
                graph(
                    "Inbox backlog and dead letters",
                    "Inbox messages not yet delivered to any agent host, and messages in the "
                    "dead-letter queue.",
                    "short",
                    ("sum(cortex_messaging_inbox_backlog_messages)", "inbox backlog"),
                    ("sum(cortex_messaging_dead_letters)", "dead letters"),
                ),
                graph(
                    "Workflow executions",
                    "Executions running now, and executions finished per second by outcome.",
                    "short",
                    ("sum(cortex_workflow_executions_running)", "running"),
                    (
                        f"sum by (status) (rate(cortex_workflow_executions_total{RATE}))",
                        "{{status}} / s",
                    ),
                ),
            ],
        ),
    ],
)

AGENTS = Dashboard(
    "cortex-agents",
    "Cortex / Agents",
    "Agents by template and status, the replicas they want and have, restarts and start "
    "failures, and the registry's view of hosts and instances.",
    [
        Row(
            "Agents",
            [
                graph(
                    "Agents by status",
                    "Agents of the chosen templates by lifecycle status.",
                    "short",
                    (f"sum by (status) (cortex_lifecycle_agents{T})", "{{status}}"),
                    stacked=True,
                ),
                graph(
                    "Agents by template",
                    "Agents of each template, whatever their status.",
                    "short",
                    (f"sum by (template) (cortex_lifecycle_agents{T})", "{{template}}"),
                ),
                graph(
                    "Replicas desired and ready",
                    "Replicas the agents want (deploying, running or scaling) and replicas "
                    "running and healthy.",
                    "short",
                    (f"sum(cortex_lifecycle_replicas_desired{T})", "desired"),
                    (f"sum(cortex_lifecycle_replicas_ready{T})", "ready"),
                ),
                graph(
                    "Replicas missing by template",
                    "Replicas wanted but not ready, by template: above 0 for long means "
                    "starts fail or hosts are short.",
                    "short",
                    (
                        f"sum by (template) (cortex_lifecycle_replicas_desired{T}) - "
                        f"sum by (template) (cortex_lifecycle_replicas_ready{T})",
                        "{{template}}",
                    ),
                ),
            ],
        ),
        Row(
            "Starts",
            [
                graph(
                    "Replica starts, restarts and start failures",
                    "Replicas placed on hosts, of which replacements of lost replicas or "
                    "retries after a failed start, and starts that failed, per interval.",
                    "short",
                    (
                        f"sum(increase(cortex_lifecycle_replica_starts_total{T}{RATE}))",
                        "starts",
                    ),
                    (
                        f"sum(increase(cortex_lifecycle_replica_restarts_total{T}{RATE}))",
                        "restarts",
                    ),
                    (
                        f"sum(increase(cortex_lifecycle_replica_start_failures_total{T}{RATE}))",
                        "start failures",
                    ),
                ),
                graph(
                    "Restarts by template",
                    "Replicas started again, by template, in the dashboard's time range.",
                    "short",
                    (
                        "sum by (template) "
                        f"(increase(cortex_lifecycle_replica_restarts_total{T}[$__range]))",
                        "{{template}}",
                    ),
                ),
                graph(
                    "Reconciliation pass p99",
                    "99th percentile of one pass comparing desired and actual replicas.",
                    "s",
                    (quantile(0.99, "cortex_lifecycle_reconcile_duration_seconds"), "p99"),
                ),
            ],
        ),
        Row(
            "Registry",
            [
                graph(
                    "Instances by health",
                    "Agent replicas the registry knows, by health (gone ones are replaced).",
                    "short",
                    ("sum by (health) (cortex_registry_instances)", "{{health}}"),
                    stacked=True,
                ),
                graph(
                    "Hosts by health",
                    "Agent hosts the registry knows, by health.",
                    "short",
                    ("sum by (health) (cortex_registry_hosts)", "{{health}}"),
                    stacked=True,
                ),
            ],
        ),
    ],
    [Variable("template", "Template", "cortex_lifecycle_agents")],
)

MESSAGING = Dashboard(
    "cortex-messaging",
    "Cortex / Messaging",
    "Agent messages by template: throughput, failures, dead letters, delivery latency and "
    "handler time, the inbox partitions' backlog, topics and hand-overs between hosts.",
    [
        Row(
            "Throughput",
            [
                graph(
                    "Messages / s",
                    "Messages for the chosen templates stored, reaching a handler, handled, "
                    "failing and dead-lettered, per second.",
                    "ops",
                    (f"sum(rate(cortex_messages_sent_total{T}{RATE}))", "sent"),
                    (f"sum(rate(cortex_messages_delivered_total{T}{RATE}))", "delivered"),
                    (f"sum(rate(cortex_messages_acked_total{T}{RATE}))", "acked"),
                    (f"sum(rate(cortex_messages_failed_total{T}{RATE}))", "failed"),
                    (f"sum(rate(cortex_messages_dead_lettered_total{T}{RATE}))", "dead-lettered"),
                ),
                graph(
                    "Sent / s by template",
                    "Messages stored in the inboxes of each template's agents, per second.",
                    "ops",
                    (
                        f"sum by (template) (rate(cortex_messages_sent_total{T}{RATE}))",
                        "{{template}}",
                    ),
                ),
                graph(
                    "Handler failures / s by template",
                    "Handler runs that raised, per second.",
                    "ops",
                    (
                        f"sum by (template) (rate(cortex_messages_failed_total{T}{RATE}))",
                        "{{template}}",
                    ),
                ),
                graph(
                    "Dead-lettered by template",
                    "Messages put in the dead-letter queue in the dashboard's time range.",
                    "short",
                    (
                        "sum by (template) "
                        f"(increase(cortex_messages_dead_lettered_total{T}[$__range]))",
                        "{{template}}",
                    ),
                ),
            ],
        ),
        Row(
            "Latency",
            [
                graph(
                    "Delivery latency",
                    "From a message's creation to the start of its handler: median and 99th "
                    "percentile.",
                    "s",
                    (quantile(0.5, "cortex_messages_delivery_latency_seconds", "", T), "p50"),
                    (quantile(0.99, "cortex_messages_delivery_latency_seconds", "", T), "p99"),
                ),
                graph(
                    "Handler duration p99 by template",
                    "99th percentile of the time on_message takes.",
                    "s",
                    (
                        quantile(0.99, "cortex_messages_handler_duration_seconds", "template", T),
                        "{{template}}",
                    ),
                ),
            ],
        ),
        Row(
            "Inboxes and dead letters",
            [
                graph(
                    "Inbox backlog by partition",
                    "Messages not yet delivered to any agent host, per inbox partition.",
                    "short",
                    (
                        "sum by (partition) (cortex_messaging_inbox_backlog_messages)",
                        "partition {{partition}}",
                    ),
                ),
                graph(
                    "Unacknowledged by partition",
                    "Messages delivered to a host and not yet acknowledged: being handled, "
                    "or waiting for their agent to run.",
                    "short",
                    (
                        "sum by (partition) (cortex_messaging_inbox_unacked_messages)",
                        "partition {{partition}}",
                    ),
                ),
                stat(
                    "Dead-letter queue",
                    "Messages in the dead-letter queue.",
                    "short",
                    "sum(cortex_messaging_dead_letters)",
                ),
                stat(
                    "Duplicates skipped / s",
                    "Redeliveries of messages already handled, acknowledged without running "
                    "the handler again.",
                    "ops",
                    f"sum(rate(cortex_host_duplicates_skipped_total{RATE}))",
                ),
            ],
        ),
        Row(
            "Topics and hand-overs",
            [
                graph(
                    "Topic fan-out / s",
                    "Topic messages fanned out, and the copies made for their subscribers.",
                    "ops",
                    (f"sum(rate(cortex_messaging_topic_messages_total{RATE}))", "topic messages"),
                    (f"sum(rate(cortex_messaging_fanout_copies_total{RATE}))", "copies"),
                ),
                graph(
                    "Hand-overs / s by outcome",
                    "Messages a host passed to another host that runs the agent; "
                    "`not_running`: no host runs it, the message waits.",
                    "ops",
                    (
                        f"sum by (outcome) (rate(cortex_host_handovers_total{RATE}))",
                        "{{outcome}}",
                    ),
                ),
            ],
        ),
    ],
    [Variable("template", "Template", "cortex_messages_delivered_total")],
)

WORKFLOWS = Dashboard(
    "cortex-workflows",
    "Cortex / Workflows",
    "Workflow executions by outcome, steps' duration and retries by task type, and the "
    "workflow service's requests.",
    [
        Row(
            "Executions",
            [
                stat(
                    "Running",
                    "Executions whose runner is running now.",
                    "short",
                    "sum(cortex_workflow_executions_running)",
                ),
                stat(
                    "Succeeded in range",
                    "Executions that succeeded in the dashboard's time range.",
                    "short",
                    'sum(increase(cortex_workflow_executions_total{status="succeeded"}[$__range]))',
                ),
                stat(
                    "Failed in range",
                    "Executions that failed in the dashboard's time range.",
                    "short",
                    'sum(increase(cortex_workflow_executions_total{status="failed"}[$__range]))',
                ),
                stat(
                    "Cancelled in range",
                    "Executions cancelled in the dashboard's time range.",
                    "short",
                    'sum(increase(cortex_workflow_executions_total{status="cancelled"}[$__range]))',
                ),
                graph(
                    "Executions finished / s by status",
                    "Executions that ended, per second, by how they ended.",
                    "ops",
                    (
                        f"sum by (status) (rate(cortex_workflow_executions_total{RATE}))",
                        "{{status}}",
                    ),
                ),
                graph(
                    "Running executions by replica",
                    "Executions each workflow replica runs now.",
                    "short",
                    (
                        "sum by (process) (cortex_workflow_executions_running)",
                        "{{process}}",
                    ),
                ),
            ],
        ),
        Row(
            "Steps",
            [
                graph(
                    "Step duration p99 by type",
                    "99th percentile of one attempt of a step, by task type.",
                    "s",
                    (
                        quantile(0.99, "cortex_workflow_step_duration_seconds", "type"),
                        "{{type}}",
                    ),
                ),
                graph(
                    "Step retries / s by type",
                    "Attempts of steps after a failed attempt, per second.",
                    "ops",
                    (
                        f"sum by (type) (rate(cortex_workflow_step_retries_total{RATE}))",
                        "{{type}}",
                    ),
                ),
                graph(
                    "Workflow service requests / s",
                    "Requests the workflow service answered, by endpoint and outcome.",
                    "reqps",
                    (
                        "sum by (endpoint, code) "
                        f'(rate(cortex_service_requests_total{{service="workflow"}}{RATE}))',
                        "{{endpoint}} {{code}}",
                    ),
                ),
            ],
        ),
    ],
)

INFRASTRUCTURE = Dashboard(
    "cortex-infrastructure",
    "Cortex / Infrastructure",
    "Agent hosts, every process's CPU and memory, the NATS servers, streams and consumers, "
    "the event stores, the outbox relays and the read models' lag.",
    [
        Row(
            "Agent hosts",
            [
                graph(
                    "Host CPU",
                    "CPU each agent host process uses (1 = one core).",
                    "percentunit",
                    (
                        f"sum by (host) (rate(cortex_host_cpu_seconds_total{H}{RATE}))",
                        "{{host}}",
                    ),
                ),
                graph(
                    "Host memory",
                    "Resident memory of each agent host process.",
                    "bytes",
                    (f"sum by (host) (cortex_host_resident_memory_bytes{H})", "{{host}}"),
                ),
                graph(
                    "Replicas by host and state",
                    "Agent replicas each host runs, by state.",
                    "short",
                    (
                        f"sum by (host, state) (cortex_host_replicas{H})",
                        "{{host}} {{state}}",
                    ),
                ),
                graph(
                    "Messages in flight by host",
                    "Messages the host's replicas are handling now.",
                    "short",
                    (f"sum by (host) (cortex_host_inflight_messages{H})", "{{host}}"),
                ),
            ],
        ),
        Row(
            "Processes",
            [
                graph(
                    "CPU by process",
                    "CPU of every process of the platform (1 = one core).",
                    "percentunit",
                    (
                        f"sum by (component, process) (rate(process_cpu_seconds_total{RATE}))",
                        "{{process}}",
                    ),
                ),
                graph(
                    "Memory by process",
                    "Resident memory of every process of the platform.",
                    "bytes",
                    (
                        "sum by (component, process) (process_resident_memory_bytes)",
                        "{{process}}",
                    ),
                ),
                graph(
                    "NATS connection by process",
                    "1 while the process is connected to NATS.",
                    "short",
                    ("min by (component, process) (cortex_nats_connected)", "{{process}}"),
                ),
                graph(
                    "Leases held",
                    "Work one replica does at a time, by piece of work: 1 means one holder.",
                    "short",
                    ("sum by (work) (cortex_lease_held)", "{{work}}"),
                ),
            ],
        ),
        Row(
            "NATS",
            [
                stat(
                    "NATS servers answering",
                    "nats-servers whose monitoring port answered the last scrape.",
                    "short",
                    "sum(cortex_nats_up)",
                ),
                stat(
                    "Slow consumers / s",
                    "Clients the servers cut off for not reading fast enough.",
                    "ops",
                    f"sum(rate(cortex_nats_server_slow_consumers_total{RATE}))",
                ),
                stat(
                    "JetStream API errors / s",
                    "JetStream API requests answered with an error.",
                    "ops",
                    f"sum(rate(cortex_nats_jetstream_api_errors_total{RATE}))",
                ),
                stat(
                    "Client connections",
                    "Connections of the platform's processes to the servers.",
                    "short",
                    "sum(cortex_nats_client_connections)",
                ),
                graph(
                    "Server CPU",
                    "CPU of each nats-server, in percent of one core.",
                    "percent",
                    ("max by (server) (cortex_nats_server_cpu_percent)", "{{server}}"),
                ),
                graph(
                    "Server memory",
                    "Resident memory of each nats-server.",
                    "bytes",
                    ("max by (server) (cortex_nats_server_memory_bytes)", "{{server}}"),
                ),
                graph(
                    "Stream bytes",
                    "Bytes each of the platform's streams holds (counted on its leader).",
                    "bytes",
                    ("sum by (stream) (cortex_nats_stream_bytes)", "{{stream}}"),
                ),
                graph(
                    "Stream messages",
                    "Messages each of the platform's streams holds.",
                    "short",
                    ("sum by (stream) (cortex_nats_stream_messages)", "{{stream}}"),
                ),
                graph(
                    "Consumer pending",
                    "Messages not yet delivered to each durable consumer.",
                    "short",
                    (
                        "sum by (stream, consumer) (cortex_nats_consumer_pending_messages)",
                        "{{stream}} {{consumer}}",
                    ),
                ),
                graph(
                    "Consumer redeliveries",
                    "Unacknowledged messages each durable consumer delivered more than once.",
                    "short",
                    (
                        "sum by (stream, consumer) (cortex_nats_consumer_redelivered_messages)",
                        "{{stream}} {{consumer}}",
                    ),
                ),
            ],
        ),
        Row(
            "Event stores, relays and read models",
            [
                graph(
                    "Append p99 by service",
                    "99th percentile of an append to each service's event store.",
                    "s",
                    (
                        quantile(0.99, "cortex_eventstore_append_duration_seconds", "service"),
                        "{{service}}",
                    ),
                ),
                graph(
                    "Events appended / s by service",
                    "Events each service appends to its event store, per second.",
                    "ops",
                    (
                        f"sum by (service) (rate(cortex_eventstore_appended_events_total{RATE}))",
                        "{{service}}",
                    ),
                ),
                graph(
                    "Relay lag",
                    "Events appended but not yet published to JetStream, by service.",
                    "short",
                    ("sum by (service) (cortex_relay_lag_events)", "{{service}}"),
                ),
                graph(
                    "Relay published / s",
                    "Events the outbox relays publish, per second, by service.",
                    "ops",
                    (
                        f"sum by (service) (rate(cortex_relay_published_events_total{RATE}))",
                        "{{service}}",
                    ),
                ),
                graph(
                    "Projection lag in events",
                    "Events in each service's store that a read model has not applied, "
                    "worst replica.",
                    "short",
                    (
                        "max by (component, projection) (cortex_projection_lag_events)",
                        "{{component}} {{projection}}",
                    ),
                ),
                graph(
                    "Projection lag p99",
                    "99th percentile of the time from an event's append to its application "
                    "in the read models, by service.",
                    "s",
                    (
                        quantile(0.99, "cortex_projection_lag_seconds", "component"),
                        "{{component}}",
                    ),
                ),
            ],
        ),
    ],
    [Variable("host", "Agent host", "cortex_host_replicas")],
)

GATEWAY = Dashboard(
    "cortex-gateway",
    "Cortex / Gateway and services",
    "CodeValdCortex gateway HTTP traffic, NATS connectivity and service request/reply.",
    [
        Row(
            "Gateway (HTTP API)",
            [
                stat(
                    "Requests / s",
                    "HTTP requests the gateways answer, per second.",
                    "reqps",
                    f"sum(rate(cortex_gateway_requests_total{RATE}))",
                ),
                stat(
                    "5xx ratio",
                    "Share of gateway responses with a 5xx status.",
                    "percentunit",
                    ratio(
                        'cortex_gateway_requests_total{status_code=~"5.."}',
                        "cortex_gateway_requests_total",
                    ),
                ),
                stat(
                    "p95 latency",
                    "95th percentile of the time to answer an HTTP request.",
                    "s",
                    quantile(0.95, "cortex_gateway_request_duration_seconds"),
                ),
                stat(
                    "Processes connected to NATS",
                    "Processes (gateway, services, hosts) whose NATS connection is up.",
                    "short",
                    "sum(cortex_nats_connected)",
                ),
                graph(
                    "Requests / s by status",
                    "HTTP requests per second by status code.",
                    "reqps",
                    (
                        f"sum by (status_code) (rate(cortex_gateway_requests_total{RATE}))",
                        "{{status_code}}",
                    ),
                ),
                graph(
                    "Requests / s by path",
                    "HTTP requests per second by method and route.",
                    "reqps",
                    (
                        f"sum by (method, path) (rate(cortex_gateway_requests_total{RATE}))",
                        "{{method}} {{path}}",
                    ),
                ),
                graph(
                    "Latency (p50, p95, p99)",
                    "Percentiles of the time to answer an HTTP request.",
                    "s",
                    (quantile(0.5, "cortex_gateway_request_duration_seconds"), "p50"),
                    (quantile(0.95, "cortex_gateway_request_duration_seconds"), "p95"),
                    (quantile(0.99, "cortex_gateway_request_duration_seconds"), "p99"),
                ),
                graph(
                    "NATS connection per process",
                    "1 while the process is connected to NATS.",
                    "short",
                    ("cortex_nats_connected", "{{process}}"),
                ),
            ],
        ),
        Row(
            "Services (NATS request/reply)",
            [
                graph(
                    "Service requests / s by endpoint and code",
                    "Requests each service endpoint answered, per second, by outcome.",
                    "reqps",
                    (
                        "sum by (service, endpoint, code) "
                        f"(rate(cortex_service_requests_total{RATE}))",
                        "{{service}} {{endpoint}} {{code}}",
                    ),
                ),
                graph(
                    "Service p95 latency by endpoint",
                    "95th percentile of the time to answer a request, by endpoint.",
                    "s",
                    (
                        quantile(
                            0.95, "cortex_service_request_duration_seconds", "service, endpoint"
                        ),
                        "{{service}} {{endpoint}}",
                    ),
                ),
            ],
        ),
    ],
)

DASHBOARDS = {
    "overview.json": OVERVIEW,
    "agents.json": AGENTS,
    "messaging.json": MESSAGING,
    "workflows.json": WORKFLOWS,
    "infrastructure.json": INFRASTRUCTURE,
    "gateway.json": GATEWAY,
}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.kind == "stat":
        options: dict[str, Any] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
        }
    else:
        defaults["custom"] = {
            "fillOpacity": 20 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none"},
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }


def variable_json(variable: Variable) -> dict[str, Any]:
    query = f"label_values({variable.metric}, {variable.name})"
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "variable"},
        "definition": query,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = line_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(panel_json(panel, len(panels) + 1, x, y))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    datasource = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["cortex"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {"title": "Cortex", "type": "dashboards", "tags": ["cortex"], "asDropdown": True}
        ],
        "templating": {"list": [datasource, *(variable_json(v) for v in dashboard.variables)]},
        "panels": panels,
    }


def render() -> dict[str, str]:
    return {
        name: json.dumps(dashboard_json(dashboard), indent=2) + "\n"
        for name, dashboard in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        stale = sorted(
            name
            for name, text in wanted.items()
            if not (OUT / name).exists() or (OUT / name).read_text() != text
        )
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in wanted)
        for name in stale:
            print(f"{OUT / name} is not what tools/dashboards.py writes", file=sys.stderr)
        for name in extra:
            print(f"{OUT / name} is not made by tools/dashboards.py", file=sys.stderr)
        return 1 if stale or extra else 0
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(wanted)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
