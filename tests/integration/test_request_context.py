"""One request, followed from the gateway through the services, agent messages and workflow
steps: one trace, and one correlation id in every log line of its work.

The gateway, the services and an agent host run in this process, on the session's nats-server,
as `cortex up` would run them in processes of their own: everything they do for a request
still goes over NATS, so the trace context and the correlation id travel in NATS headers as
they do between processes, and the test sees every span in one in-memory exporter.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.host.service import build as build_host
from cortex.kernel.logging import configure_logging
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.lifecycle.service import build as build_lifecycle
from cortex.messaging.service import build as build_messaging
from cortex.registry.service import build as build_registry
from cortex.workflow.service import build as build_workflow
from tests.support.polling import settled
from tests.support.tracing import parent_of
from tests.unit.workflow.test_validation import FANOUT

TOKEN = "cxt_request_context_token"
Build = Callable[[Settings], ServiceRuntime]


@dataclass
class Platform:
    api: httpx.AsyncClient

    async def ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.api.request(method, path, **kwargs)
        assert response.is_success, response.text
        return response

    async def running_agent(self, name: str, template: str) -> dict[str, Any]:
        body = {"name": name, "template": template, "deploy": True}
        await self.ok("POST", "/api/v1/agents", json=body)

        async def agent() -> dict[str, Any]:
            return (await self.ok("GET", f"/api/v1/agents/{name}")).json()  # type: ignore[no-any-return]

        return await settled(
            agent, lambda a: a["status"] == "running" and a["ready_replicas"] == 1, timeout=20
        )


@contextlib.asynccontextmanager
async def platform_of(settings: Settings, *builds: Build) -> AsyncIterator[Platform]:
    """The services `builds` makes, an agent host and the gateway, started in this process."""
    runtimes: list[ServiceRuntime] = []
    gateway = Gateway(settings)
    try:
        for build in (*builds, build_host):
            runtime = build(settings)
            await runtime.start()
            runtimes.append(runtime)
        await gateway.start({})
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ) as api:

            async def connected() -> bool:
                return gateway.readiness()["nats"]

            await settled(connected, bool)
            yield Platform(api)
    finally:
        await gateway.stop()
        for runtime in reversed(runtimes):
            await runtime.stop()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        admin_token=TOKEN,
        heartbeat_interval=0.5,
        reconcile_interval=0.5,
        shutdown_grace=2.0,
        request_timeout=10.0,
    )


# --- traces --------------------------------------------------------------------------------


class Trace:
    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = spans
        self.by_id = {s.context.span_id: s for s in spans}

    def one(self, name: str, kind: SpanKind | None = None) -> ReadableSpan:
        (found,) = [s for s in self.spans if s.name == name and kind in (None, s.kind)]
        return found

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if parent_of(s) == span.context.span_id]


async def test_a_workflow_execution_is_one_trace_from_the_http_request_to_every_step(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    # No scans for executions to resume during the test: one that picked up the new execution
    # before the request's own launch would run it outside the request's trace.
    workflow = partial(build_workflow, scan_interval=3600.0)
    async with platform_of(settings, build_registry, build_lifecycle, workflow) as platform:
        echo = await platform.running_agent("wf-echo", "echo")
        await platform.ok("POST", "/api/v1/workflow-templates", json=FANOUT)
        created = await platform.ok(
            "POST", "/api/v1/workflows", json={"template": "fanout", "params": {"text": "hi"}}
        )
        workflow_id = created.json()["id"]

        started = await platform.ok("POST", f"/api/v1/workflows/{workflow_id}/execute")
        execution_id = started.json()["id"]

        async def execution() -> dict[str, Any]:
            return (await platform.ok("GET", f"/api/v1/executions/{execution_id}")).json()  # type: ignore[no-any-return]

        done = await settled(execution, lambda e: e["status"] != "running", timeout=20)
        assert done["status"] == "succeeded", done

        async def finished() -> list[ReadableSpan]:
            return list(spans.get_finished_spans())

        # The execution's span ends a moment after its last event is readable.
        await settled(finished, lambda found: any(s.name == "execution fanout" for s in found))

    request = next(
        s
        for s in spans.get_finished_spans()
        if s.name == "POST /api/v1/workflows/{workflow_id}/execute"
    )
    trace = Trace(
        [s for s in spans.get_finished_spans() if s.context.trace_id == request.context.trace_id]
    )

    # HTTP request -> service call -> the workflow service's command -> the execution.
    assert (request.kind, request.parent) == (SpanKind.SERVER, None)
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 202
    call = trace.one("workflow/workflow.execute", SpanKind.CLIENT)
    command = trace.one("workflow/workflow.execute", SpanKind.SERVER)
    run = trace.one("execution fanout")
    assert parent_of(call) == request.context.span_id
    assert parent_of(command) == call.context.span_id
    assert parent_of(run) == command.context.span_id
    assert run.attributes is not None
    assert run.attributes["cortex.execution_id"] == execution_id

    # A span per step, the parallel group's as siblings of the first step: all children of
    # the execution's span, and the group's three at the same time.
    steps = {s.name: s for s in trace.children(run)}
    assert set(steps) == {"step first", "step a", "step b", "step c"}
    group = [steps[f"step {i}"] for i in "abc"]
    assert max(s.start_time or 0 for s in group) < min(s.end_time or 0 for s in group)
    assert (steps["step first"].end_time or 0) <= min(s.start_time or 0 for s in group)

    # Each step looks its agent up (a call to the lifecycle service) and sends it a message,
    # which the agent host handles in a consumer span under the sending span.
    for step in steps.values():
        lookup, send = sorted(trace.children(step), key=lambda s: s.start_time or 0)
        assert (lookup.name, lookup.kind) == ("lifecycle/agent.get", SpanKind.CLIENT)
        (lookup_command,) = trace.children(lookup)
        assert (lookup_command.name, lookup_command.kind) == (
            "lifecycle/agent.get",
            SpanKind.SERVER,
        )
        assert (send.name, send.kind) == ("send agent message", SpanKind.PRODUCER)
        (handled,) = trace.children(send)
        assert (handled.name, handled.kind) == ("handle agent message", SpanKind.CONSUMER)
        assert handled.attributes is not None
        assert handled.attributes["cortex.agent_id"] == echo["id"]

    # Nothing of the trace hangs loose: every span's parent is in it.
    assert all(s is request or parent_of(s) in trace.by_id for s in trace.spans)


# --- correlation ids in log lines ----------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON log lines of loggers made from here on (the services' and the agents'), with
    info lines; the tests' own logging afterwards."""
    out = io.StringIO()
    configure_logging("tests", "info", "json", stream=out)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        configure_logging("tests", "warning", "console")


async def test_log_lines_of_a_request_carry_its_request_id_in_services_and_agent_handlers(
    settings: Settings, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    def logged(event: str, _count: int = 1, **fields: Any) -> Callable[[], Any]:
        """Waits for `_count` lines of `event` with `fields`, and returns them."""

        async def lines() -> list[dict[str, Any]]:
            return [
                line
                for line in log_lines()
                if line.get("event") == event and fields.items() <= line.items()
            ]

        return lambda: settled(lines, lambda found: len(found) >= _count)

    async with platform_of(settings, build_registry, build_lifecycle, build_messaging) as platform:
        template = {
            "name": "narrator",
            "handler": "tests.support.sample_agents:Narrator",
            "max_deliveries": 1,
        }
        await platform.ok("POST", "/api/v1/templates", json=template)
        agent = await platform.running_agent("teller", "narrator")
        listener = await platform.running_agent("listener", "narrator")

        # The agent's handler logs with the id of the request that sent the message, and so
        # does the handler of the message it sends on meanwhile.
        sent = await platform.ok(
            "POST",
            "/api/v1/agents/teller/messages?wait=5",
            json={"payload": {"text": "hello", "forward": "listener"}},
            headers={"X-Request-Id": "send-1"},
        )
        assert sent.headers["X-Request-Id"] == "send-1"
        assert sent.json()["status"] == "replied"
        told, passed_on = sorted(
            await logged("narrating", correlation_id="send-1", _count=2)(),
            key=lambda line: line["agent_id"] != agent["id"],
        )
        assert (told["agent_id"], passed_on["agent_id"]) == (agent["id"], listener["id"])

        # A message that fails goes to the dead-letter queue; replaying it is a service
        # command (the messaging service logs it) that sends the message again, and both
        # log with the replay request's id.
        await platform.ok(
            "POST", "/api/v1/agents/teller/messages", json={"payload": {"fail": True}}
        )

        async def dead_letters() -> list[dict[str, Any]]:
            return (await platform.ok("GET", "/api/v1/dlq?agent=teller")).json()["items"]  # type: ignore[no-any-return]

        (dead,) = await settled(dead_letters, bool)
        replayed = await platform.ok(
            "POST", f"/api/v1/dlq/{dead['id']}/replay", headers={"X-Request-Id": "replay-1"}
        )
        assert replayed.headers["X-Request-Id"] == "replay-1"
        (command,) = await logged("dead letter replayed", correlation_id="replay-1")()
        assert command["service"] == "messaging"
        (handled,) = await logged("narrating", correlation_id="replay-1")()
        assert handled["agent_id"] == agent["id"]

        # Without an id (or with one that could not travel in a header), the gateway makes one
        # and says which.
        made = await platform.ok("GET", "/api/v1/agents/teller")
        refused = await platform.ok(
            "GET", "/api/v1/agents/teller", headers={"X-Request-Id": "two words"}
        )
        ids = {made.headers["X-Request-Id"], refused.headers["X-Request-Id"]}
        assert len(ids) == 2
        assert "two words" not in ids
        assert all(len(i) >= 20 for i in ids)
        # Errors say it too.
        missing = await platform.api.get(
            "/api/v1/agents/nobody", headers={"X-Request-Id": "lost-1"}
        )
        assert (missing.status_code, missing.headers["X-Request-Id"]) == (404, "lost-1")
