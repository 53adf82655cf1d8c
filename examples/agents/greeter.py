"""A user-written agent: greets whoever writes to it and remembers how many it greeted.

Its template (`examples/greeter-template.yaml`) names it as `greeter:Greeter`; agent hosts find
it when `CORTEX_AGENT_PATH` includes this folder. See docs/agents.md.
"""

from __future__ import annotations

from typing import Any

from cortex.sdk import Agent, Message


class Greeter(Agent):
    async def on_start(self) -> None:
        self.greeting = str(self.config["greeting"])
        self.shout = bool(self.config.get("shout", False))
        self.greeted = 0
        self.log.info("greeter ready", greeting=self.greeting)

    async def on_message(self, msg: Message) -> dict[str, Any]:
        body = msg.value()
        who = body.get("name", "stranger") if isinstance(body, dict) else str(body)
        text = f"{self.greeting}, {who}!"
        self.greeted += 1
        # The line carries the id of the request that sent the message (docs/observability.md).
        self.log.info("greeting", who=who)
        return {
            "text": text.upper() if self.shout else text,
            "greeted": self.greeted,
            "replica": self.instance_id,
        }

    async def on_stop(self) -> None:
        self.log.info("greeter stopping", greeted=self.greeted)
