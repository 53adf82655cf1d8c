"""`self.state`: the agent's versioned JSON document, shared by all its replicas.

Every method goes to the registry at once; nothing is buffered in the replica, so a replica that
stops (or crashes) after a write returned has lost nothing, and the next one (after a redeploy,
on another host) reads it back in `on_start`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from cortex.contracts.state import StateView, StateWrite
from cortex.kernel.errors import PreconditionFailed

if TYPE_CHECKING:
    from cortex.sdk.agent import Agent


class AgentState:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    async def get(self) -> StateView:
        """The current document (`version` 0 and `value` None if never written)."""
        return await self._agent._context.state_get(self._agent.id)

    async def put(self, value: Any, *, expected_version: int | None = None) -> StateWrite:
        """Replace the document. With `expected_version`, only if nobody changed it since (else
        `PreconditionFailed`, whose `details["current_version"]` says what it is now); without,
        the write with the latest clock wins among writers that race."""
        return await self._agent._context.state_put(
            self._agent.id, value, expected_version, self._agent.instance_id, time.time_ns()
        )

    async def patch(
        self, patch: dict[str, Any], *, expected_version: int | None = None
    ) -> StateWrite:
        """RFC 7396 merge-patch: keys set to None are removed, objects merge."""
        return await self._agent._context.state_patch(
            self._agent.id, patch, expected_version, self._agent.instance_id, time.time_ns()
        )

    async def update(self, change: Callable[[Any], Any], *, retries: int = 20) -> StateView:
        """Read, change, write back only if nobody else wrote meanwhile; on a race read again
        and retry. `change` gets the current value (None at first) and returns the new one."""
        for _ in range(retries):
            current = await self.get()
            try:
                written = await self.put(change(current.value), expected_version=current.version)
            except PreconditionFailed:
                continue
            return written.state
        raise PreconditionFailed(
            f"state of {self._agent.name} kept changing; gave up after {retries} attempts"
        )

    def watch(self) -> AsyncIterator[StateView]:
        """Every change from now on, as it is applied (by any replica or through the API)."""
        return self._agent._context.state_watch(self._agent.id)
