"""One running replica of an agent: its `Agent` object, state and counters."""

from __future__ import annotations

import asyncio
from typing import Any

from cortex.contracts.hosts import ReplicaSpec
from cortex.contracts.registry import ReplicaReport, ReplicaState
from cortex.kernel.ids import utcnow
from cortex.kernel.logging import get_logger
from cortex.kernel.messages import Message
from cortex.kernel.waiting import wait_event
from cortex.sdk.agent import Agent, AgentContext

from .loader import HandlerError, describe
from .metrics import ReplicaMetrics

MAX_ERROR = 500


class ReplicaStartError(Exception):
    pass


class HandlerAborted(Exception):
    """A handler raised what is not an `Exception` (`SystemExit`, `KeyboardInterrupt`...):
    the message failed, as with any other error."""


class Replica:
    def __init__(
        self,
        spec: ReplicaSpec,
        cls: type[Agent],
        context: AgentContext,
        metrics: ReplicaMetrics,
    ) -> None:
        self.spec = spec
        self.metrics = metrics
        self.state: ReplicaState = "starting"
        self.started_at = utcnow()
        self.inflight = 0
        self.handled = 0
        self.failures = 0
        self.last_error: str | None = None
        self._slots = asyncio.Semaphore(spec.concurrency)
        self._idle = asyncio.Event()
        self._idle.set()
        # The agent's `self.log`: every line says which agent and which of its replicas.
        self.log = get_logger(
            agent_id=spec.agent_id, agent_name=spec.agent_name, instance_id=spec.instance_id
        )
        try:
            self.agent = cls()
        except BaseException as exc:  # the agent's own code: its failure, not the host's
            raise HandlerError(f"{spec.handler}() failed: {describe(exc)}") from None
        self.agent._bind(
            agent_id=spec.agent_id,
            name=spec.agent_name,
            instance_id=spec.instance_id,
            config=dict(spec.config),
            log=self.log,
            context=context,
        )

    @property
    def id(self) -> str:
        return self.spec.instance_id

    @property
    def accepting(self) -> bool:
        return self.state == "running"

    async def start(self) -> None:
        try:
            # In this task, not one of its own as wait_for would run it in: asyncio re-raises a
            # SystemExit from a task of its own out of the event loop, ending the host.
            async with asyncio.timeout(self.spec.startup_timeout):
                await self.agent.on_start()
        except TimeoutError:
            self._fail(f"on_start did not finish within {self.spec.startup_timeout:g}s")
            raise ReplicaStartError(self.last_error) from None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit and the like included: the host goes on
            self._fail(f"on_start failed: {describe(exc)}")
            raise ReplicaStartError(self.last_error) from None
        self.state = "running"

    async def handle(self, message: Message) -> Any:
        """Run `on_message`, at most `concurrency` at a time; raises what the handler raised."""
        async with self._slots:
            self.inflight += 1
            self._idle.clear()
            began = self.metrics.started(message.created_at)
            try:
                result = await self.agent.on_message(message)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self.metrics.finished(began, ok=False)
                self.failures += 1
                self.last_error = describe(exc)[:MAX_ERROR]
                if isinstance(exc, Exception):
                    raise
                # Raised on, SystemExit would end the host's event loop with every agent on it.
                raise HandlerAborted(describe(exc)) from None
            finally:
                self.inflight -= 1
                if self.inflight == 0:
                    self._idle.set()
            self.metrics.finished(began, ok=True)
            self.handled += 1
            return result

    async def stop(self, grace: float) -> None:
        """Graceful: no new messages, let in-flight ones finish within `grace`, `on_stop`."""
        if self.state in ("stopping",):
            return
        self.state = "stopping"
        if not await wait_event(self._idle, grace):
            self.log.warning(
                "in-flight messages still running at the end of the grace period",
                inflight=self.inflight,
            )
        try:
            async with asyncio.timeout(max(grace, 1.0)):
                await self.agent.on_stop()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.log.warning("on_stop failed", error=describe(exc))

    def report(self) -> ReplicaReport:
        return ReplicaReport(
            instance_id=self.spec.instance_id,
            agent_id=self.spec.agent_id,
            agent_name=self.spec.agent_name,
            state=self.state,
            inflight=self.inflight,
            busy=self.inflight >= self.spec.concurrency,
            handled=self.handled,
            failures=self.failures,
            last_error=self.last_error,
            started_at=self.started_at,
        )

    def _fail(self, error: str) -> None:
        self.state = "failed"
        self.last_error = error[:MAX_ERROR]
        self.log.warning("replica failed to start", error=self.last_error)
