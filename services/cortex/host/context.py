"""What replicas use to talk to other agents: `Agent.send` and `Agent.request`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cortex.contracts.events import EventEnvelope
from cortex.contracts.lifecycle import AgentRef, AgentView
from cortex.contracts.messages import ContentType
from cortex.contracts.messaging import Subscription
from cortex.contracts.state import GetState, PatchState, PutState, StateView, StateWrite
from cortex.contracts.subjects import Subjects
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.errors import Internal, Timeout
from cortex.kernel.ids import new_id
from cortex.kernel.messages import (
    Message,
    claimed_payload,
    confirmation,
    encode_payload,
    publish_to_topic,
    read_message,
    reply_error,
    request_agent,
    send_to_agent,
)

NAME_CACHE_SECONDS = 30.0
WATCH_BUFFER = 256
"""Changes a slow watcher may fall behind by before the oldest are dropped (it can always
`get` the current document)."""


class HostAgentContext:
    def __init__(self, nc: NATS, subjects: Subjects, client: ServiceClient) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._subjects = subjects
        self._client = client
        self._names: dict[str, tuple[str, float]] = {}

    async def watch_purges(self) -> None:
        """Forget cached names of purged agents at once: a new agent may take the name, and a
        message meant for it must not go to the old one's inbox."""

        async def on_purged(msg: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                purged = msgspec.json.decode(msg.data, type=EventEnvelope).stream_id
                agent_id = purged.removeprefix("agent-")
                for name, (cached, _) in list(self._names.items()):
                    if cached == agent_id:
                        del self._names[name]

        await self._nc.subscribe(self._subjects.event("lifecycle", "agent.purged"), cb=on_purged)

    async def resolve(self, to: str) -> str:
        """An agent id from an id or a name (names are looked up and cached briefly)."""
        cached = self._names.get(to)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        agent = await self._client.call("lifecycle", "agent.get", AgentRef(to), AgentView)
        self._names[to] = (agent.id, time.monotonic() + NAME_CACHE_SECONDS)
        return agent.id

    async def send(
        self,
        sender: str,
        to: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
    ) -> str:
        body, kind = encode_payload(payload, content_type)
        return await send_to_agent(
            self._js,
            self._subjects,
            await self.resolve(to),
            body,
            content_type=kind,
            sender=sender,
            extra_headers=headers,
        )

    async def request(
        self, sender: str, to: str, payload: Any, content_type: ContentType | None, timeout: float
    ) -> Message:
        body, kind = encode_payload(payload, content_type)
        agent_id = await self.resolve(to)
        try:
            msg = await request_agent(
                self._nc,
                self._js,
                self._subjects,
                agent_id,
                body,
                content_type=kind,
                sender=sender,
                timeout=timeout,
            )
        except TimeoutError:
            raise Timeout(f"agent {to} did not reply within {timeout:g}s") from None
        error = reply_error(msg)
        if error is not None:
            raise Internal(f"agent {to} failed: {error}")
        return await claimed_payload(self._js, read_message(msg, sender))

    # --- state (kept by the registry) --------------------------------------------------------

    async def state_get(self, agent_id: str) -> StateView:
        return await self._client.call("registry", "state.get", GetState(agent_id), StateView)

    async def state_put(
        self, agent_id: str, value: Any, expected_version: int | None, writer: str, written_at: int
    ) -> StateWrite:
        cmd = PutState(
            agent_id=agent_id,
            value=value,
            writer=writer,
            expected_version=expected_version,
            written_at=written_at,
        )
        return await self._client.call("registry", "state.put", cmd, StateWrite)

    async def state_patch(
        self,
        agent_id: str,
        patch: dict[str, Any],
        expected_version: int | None,
        writer: str,
        written_at: int,
    ) -> StateWrite:
        cmd = PatchState(
            agent_id=agent_id,
            patch=patch,
            writer=writer,
            expected_version=expected_version,
            written_at=written_at,
        )
        return await self._client.call("registry", "state.patch", cmd, StateWrite)

    async def state_watch(self, agent_id: str) -> AsyncIterator[StateView]:
        changes: asyncio.Queue[StateView] = asyncio.Queue(WATCH_BUFFER)

        async def on_change(msg: Msg) -> None:
            if changes.full():
                changes.get_nowait()
            changes.put_nowait(msgspec.json.decode(msg.data, type=StateView))

        sub = await self._nc.subscribe(self._subjects.state(agent_id), cb=on_change)
        try:
            while True:
                yield await changes.get()
        finally:
            await sub.unsubscribe()

    # --- topics and confirmations -------------------------------------------------------------

    async def publish(
        self,
        sender: str,
        topic: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
    ) -> str:
        body, kind = encode_payload(payload, content_type)
        return await publish_to_topic(
            self._js,
            self._subjects,
            topic,
            body,
            content_type=kind,
            sender=sender,
            extra_headers=headers,
        )

    async def subscribe(self, agent_id: str, topic: str, *, add: bool) -> None:
        verb = "subscription.add" if add else "subscription.remove"
        await self._client.call(
            "messaging",
            verb,
            Subscription(agent_id=agent_id, topic=topic),
            object,
        )

    async def send_confirmed(
        self,
        sender: str,
        to: str,
        payload: Any,
        content_type: ContentType | None,
        headers: dict[str, str] | None,
        timeout: float,
    ) -> str:
        body, kind = encode_payload(payload, content_type)
        agent_id = await self.resolve(to)
        msg_id = new_id()
        async with confirmation(self._nc, self._subjects, msg_id) as outcome:
            await send_to_agent(
                self._js,
                self._subjects,
                agent_id,
                body,
                content_type=kind,
                sender=sender,
                extra_headers=headers,
                msg_id=msg_id,
            )
            return await outcome(timeout)
