"""The agents behind the built-in templates `echo` and `counter`."""

from __future__ import annotations

from typing import Any

from cortex.kernel.messages import Message
from cortex.sdk.agent import Agent, Reply


class Echo(Agent):
    """Replies with exactly what it got: same bytes, same content type."""

    async def on_message(self, msg: Message) -> Reply:
        return Reply(msg.payload, msg.content_type)


class Counter(Agent):
    """Counts the messages it handled; a JSON `{"by": n}` adds n. Replies `{"count": n}`.

    The count is the agent's state (`{"count": n}`), shared by its replicas and kept across
    terminations and redeploys; a new agent starts from `config.start`.
    """

    async def on_start(self) -> None:
        self.start = int(self.config.get("start", 0))

    async def on_message(self, msg: Message) -> dict[str, Any]:
        step = 1
        if msg.content_type == "application/json":
            body = msg.json()
            if isinstance(body, dict) and isinstance(body.get("by"), int):
                step = body["by"]

        def bump(value: Any) -> dict[str, Any]:
            current = dict(value) if isinstance(value, dict) else {}
            current["count"] = int(current.get("count", self.start)) + step
            return current

        state = await self.state.update(bump)
        return {"count": state.value["count"]}
