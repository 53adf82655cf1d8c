"""One part of a job: counts the words of a text and sends the count to the aggregator.

The `worker` agent is subscribed to topic `work` by its template, and runs several replicas: a
topic gives each subscribed *agent* a copy of every message, and one of that agent's replicas
handles it, so the replicas share the parts out between them.
"""

from __future__ import annotations

from cortex.sdk import Agent, Message


class Worker(Agent):
    async def on_start(self) -> None:
        self.aggregator = str(self.config.get("aggregator", "aggregator"))

    async def on_message(self, msg: Message) -> None:
        item = msg.json()
        words = len(str(item["text"]).split())
        # Persisted in the aggregator's inbox once `send` returns, so the result reaches it even
        # if it is down right now; only then is this part acknowledged.
        await self.send(
            self.aggregator,
            {
                "job": item["job"],
                "part": item["part"],
                "parts": item["parts"],
                "words": words,
                "replica": self.instance_id,
            },
        )
