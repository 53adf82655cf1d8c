"""The Python SDK for agents: subclass `Agent`, override its hooks, name it in a template.

    from cortex.sdk import Agent, Message

    class Greeter(Agent):
        async def on_start(self) -> None:
            self.greeting = self.config.get("greeting", "hello")

        async def on_message(self, msg: Message) -> str:
            return f"{self.greeting}, {msg.text}"

A template with `handler: "mypackage.greeter:Greeter"` runs it on the agent hosts.

When the platform refuses or cannot complete what an `Agent` method asks, the method raises one
of the `CortexError` subclasses exported here (with `code` and `details`, as the API's problem
documents carry them), so that a handler catches the one it can act on: `except Timeout:`.
"""

from cortex.kernel.errors import (
    Conflict,
    CortexError,
    Internal,
    Invalid,
    NotFound,
    PreconditionFailed,
    Timeout,
    TooLarge,
    Unavailable,
)
from cortex.kernel.messages import Message
from cortex.sdk.agent import Agent, AgentContext, Reply

__all__ = [
    "Agent",
    "AgentContext",
    "Conflict",
    "CortexError",
    "Internal",
    "Invalid",
    "Message",
    "NotFound",
    "PreconditionFailed",
    "Reply",
    "Timeout",
    "TooLarge",
    "Unavailable",
]
