"""The workflow service with the real services it works with: the lifecycle service (agents,
pools), the registry (state, health) and one agent host running the test agents of
`wf_agents.py`, all on the session's nats-server with SQLite stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from nats.aio.client import Client as NATS

from cortex.contracts.lifecycle import (
    AgentRef,
    AgentView,
    CreateAgent,
    HealthSettings,
    TemplateRegistration,
    TemplateSpec,
)
from cortex.contracts.workflow import (
    CreateWorkflow,
    Execute,
    ExecutionRef,
    ExecutionView,
    WorkflowTemplateRegistration,
    WorkflowTemplateSpec,
    WorkflowTemplateView,
    WorkflowView,
)
from cortex.host.service import build as build_host
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import NotFound, Unavailable
from cortex.kernel.service import ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.lifecycle.service import build as build_lifecycle
from cortex.registry.service import build as build_registry
from cortex.workflow.service import Workflows, build_service
from tests.integration.workflow.wf_agents import read_calls
from tests.support.polling import settled

HERE = Path(__file__).parent
T = TypeVar("T")

WORKER = TemplateSpec(
    name="wf-worker",
    handler="wf_agents:Worker",
    # The workflow retries on its own; a failed message must not come back by itself as well.
    max_deliveries=1,
    concurrency=8,
    health=HealthSettings(stop_grace=2.0),
)


async def answering(client: ServiceClient, service: str, verb: str, body: Any) -> None:
    """Wait until the service answers (NotFound is an answer)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            await client.call(service, verb, body, object)
            return
        except NotFound:
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def started_workflow(settings: Settings, client: ServiceClient, **kwargs: Any) -> Workflows:
    service = build_service(settings, **kwargs)
    await service.runtime.start()
    await answering(client, "workflow", "execution.get", ExecutionRef("none"))
    return service


@dataclass
class Stack:
    settings: Settings
    client: ServiceClient
    nc: NATS
    calls_dir: Path
    service: Workflows | None = None

    @property
    def workflow(self) -> ServiceRuntime:
        assert self.service is not None
        return self.service.runtime

    async def call(self, verb: str, body: Any, reply: type[T]) -> T:
        return await self.client.call("workflow", verb, body, reply)

    async def start_workflow(self, **kwargs: Any) -> Workflows:
        """A new workflow service on the same settings (after the old one was stopped)."""
        self.service = await started_workflow(self.settings, self.client, **kwargs)
        return self.service

    async def agent(self, name: str, template: str, **fields: Any) -> AgentView:
        """Created, deployed, and running with its replicas healthy."""
        config = {"dir": str(self.calls_dir)} if template == WORKER.name else {}
        cmd = CreateAgent(name=name, template=template, config=config, deploy=True, **fields)
        await self.client.call("lifecycle", "agent.create", cmd, AgentView)
        return await settled(
            lambda: self.client.call("lifecycle", "agent.get", AgentRef(name), AgentView),
            lambda a: a.status == "running" and a.ready_replicas == a.replicas,
        )

    async def register(self, template: dict[str, Any]) -> WorkflowTemplateView:
        done = await self.call("template.register", template, WorkflowTemplateRegistration)
        return done.template

    async def run(
        self, template: str, params: dict[str, Any] | None = None, timeout: float = 20.0
    ) -> ExecutionView:
        """Create a workflow of `template`, execute it, wait until it has finished."""
        started = await self.execute(template, params)
        return await self.finished(started.id, timeout)

    async def execute(self, template: str, params: dict[str, Any] | None = None) -> ExecutionView:
        workflow = await self.call(
            "workflow.create", CreateWorkflow(template=template, params=params or {}), WorkflowView
        )
        started = await self.call(
            "workflow.execute", Execute(workflow_id=workflow.id), ExecutionView
        )
        assert started.status == "running"
        return started

    async def get(self, execution_id: str) -> ExecutionView:
        return await self.call("execution.get", ExecutionRef(execution_id), ExecutionView)

    async def finished(self, execution_id: str, timeout: float = 20.0) -> ExecutionView:
        return await settled(
            lambda: self.get(execution_id), lambda v: v.status != "running", timeout
        )

    def calls(self) -> list[dict[str, Any]]:
        return read_calls(self.calls_dir / "calls.jsonl")


@pytest.fixture
async def stack(make_settings: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[Stack]:
    settings = make_settings(
        agent_path=str(HERE),
        heartbeat_interval=0.5,
        reconcile_interval=0.5,
        shutdown_grace=2.0,
        request_timeout=10.0,
        # The tests' HTTP servers listen on loopback; the platform's own ports stay refused.
        http_step_allow="127.0.0.1",
    )
    calls = tmp_path / "calls"
    calls.mkdir()
    nc = await nats.connect(settings.effective_nats_url)
    client = ServiceClient(nc, settings.subjects(), timeout=10)
    runtimes: list[ServiceRuntime] = []
    for build in (build_registry, build_lifecycle, build_host):
        runtime = build(settings)
        await runtime.start()
        runtimes.append(runtime)
    await answering(client, "lifecycle", "agent.get", AgentRef("nobody"))
    await client.call("lifecycle", "template.register", WORKER, TemplateRegistration)
    stack = Stack(settings, client, nc, calls)
    await stack.start_workflow()
    try:
        yield stack
    finally:
        await stack.workflow.stop()
        for runtime in reversed(runtimes):
            await runtime.stop()
        await nc.close()


def step(view: ExecutionView, step_id: str) -> Any:
    return next(s for s in view.steps if s.id == step_id)


def spec(name: str, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A template body as a user would write it."""
    return {"name": name, "steps": steps, **fields}


__all__ = ["Stack", "WorkflowTemplateSpec", "spec", "step"]
