"""The `Agent` base class and what the host gives each replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from structlog.typing import FilteringBoundLogger

from cortex.contracts.messages import ContentType
from cortex.contracts.state import StateView, StateWrite
from cortex.kernel.messages import Message
from cortex.sdk.state import AgentState


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply with an explicit content type; a plain return value is typed by the SDK
    (bytes: binary, str: text, anything else: JSON)."""

    payload: Any
    content_type: ContentType | None = None


class AgentContext(Protocol):
    """What the agent host provides to a replica. Agents use it through `Agent`'s methods."""

    async def send(
        self,
        sender: str,
        to: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
    ) -> str: ...

    async def request(
        self, sender: str, to: str, payload: Any, content_type: ContentType | None, timeout: float
    ) -> Message: ...

    async def state_get(self, agent_id: str) -> StateView: ...

    async def state_put(
        self,
        agent_id: str,
        value: Any,
        expected_version: int | None,
        writer: str,
        written_at: int,
    ) -> StateWrite: ...

    async def state_patch(
        self,
        agent_id: str,
        patch: dict[str, Any],
        expected_version: int | None,
        writer: str,
        written_at: int,
    ) -> StateWrite: ...

    def state_watch(self, agent_id: str) -> AsyncIterator[StateView]: ...

    async def publish(
        self,
        sender: str,
        topic: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
    ) -> str: ...

    async def subscribe(self, agent_id: str, topic: str, *, add: bool) -> None: ...

    async def send_confirmed(
        self,
        sender: str,
        to: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
        timeout: float,
    ) -> str: ...


class Agent:
    """Base class of every agent. The host creates one instance per replica.

    Attributes set before `on_start`: `id` and `name` (of the agent, shared by its replicas),
    `instance_id` (this replica), `config` (the agent's validated config) and `log` (a
    structlog logger whose lines carry `agent_id`, `agent_name` and `instance_id`, and reach
    the platform's central logs: `cortex logs --agent <name>`).
    """

    id: str
    name: str
    instance_id: str
    config: dict[str, Any]
    log: FilteringBoundLogger
    _context: AgentContext

    def _bind(
        self,
        *,
        agent_id: str,
        name: str,
        instance_id: str,
        config: dict[str, Any],
        log: FilteringBoundLogger,
        context: AgentContext,
    ) -> None:
        self.id = agent_id
        self.name = name
        self.instance_id = instance_id
        self.config = config
        self.log = log
        self._context = context

    @cached_property
    def state(self) -> AgentState:
        """The agent's state document: `get`, `put`, `patch`, `update`, `watch`."""
        return AgentState(self)

    async def on_start(self) -> None:
        """Called once before the first message. Raising here fails the replica's start."""

    async def on_message(self, msg: Message) -> Any:
        """Handle one message. The return value (unless None) is the reply to a request.

        Returning acknowledges the message; raising makes it come back later (with backoff),
        up to the template's `max_deliveries`.
        """
        return None

    async def on_stop(self) -> None:
        """Called once after the last message, when the replica is stopped gracefully."""

    async def send(
        self,
        to: str,
        payload: Any,
        *,
        content_type: ContentType | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Send to another agent (by id or name), persisted; returns the message id."""
        return await self._context.send(self.id, to, payload, content_type, headers)

    async def send_and_confirm(
        self,
        to: str,
        payload: Any,
        *,
        timeout: float = 30.0,
        content_type: ContentType | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Send, then wait until the receiver's handler succeeded (`"acked"`) or the message
        was given up on (`"dead_lettered"`); raises `Timeout` if neither happens in time."""
        return await self._context.send_confirmed(
            self.id, to, payload, content_type, headers, timeout
        )

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        content_type: ContentType | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Publish to a topic: every subscribed agent gets it once (one of its replicas)."""
        return await self._context.publish(self.id, topic, payload, content_type, headers)

    async def subscribe(self, topic: str) -> None:
        """Take this agent's share of the topic's messages from now on (all its replicas)."""
        await self._context.subscribe(self.id, topic, add=True)

    async def unsubscribe(self, topic: str) -> None:
        await self._context.subscribe(self.id, topic, add=False)

    async def request(
        self,
        to: str,
        payload: Any,
        *,
        timeout: float = 10.0,
        content_type: ContentType | None = None,
    ) -> Message:
        """Send and wait for the other agent's reply; raises `Timeout` if none comes."""
        return await self._context.request(self.id, to, payload, content_type, timeout)
