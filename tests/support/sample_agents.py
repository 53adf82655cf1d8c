"""Agent classes the end-to-end tests deploy (hosts find them with CORTEX_AGENT_PATH)."""

from __future__ import annotations

from cortex.sdk import Agent, Message


class Refuses(Agent):
    """Fails every message, saying why."""

    async def on_message(self, msg: Message) -> str:
        raise ValueError(f"cannot handle {msg.text!r}")


class BrokenStart(Agent):
    async def on_start(self) -> None:
        raise RuntimeError("missing API key")
