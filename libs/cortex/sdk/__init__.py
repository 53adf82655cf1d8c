"""The Python SDK for agents: subclass `Agent`, override its hooks, name it in a template.

    from cortex.sdk import Agent, Message

    class Greeter(Agent):
        async def on_start(self) -> None:
            self.greeting = self.config.get("greeting", "hello")

        async def on_message(self, msg: Message) -> str:
            return f"{self.greeting}, {msg.text}"

A template with `handler: "mypackage.greeter:Greeter"` runs it on the agent hosts.
"""

from cortex.kernel.messages import Message
from cortex.sdk.agent import Agent, AgentContext, Reply

__all__ = ["Agent", "AgentContext", "Message", "Reply"]
