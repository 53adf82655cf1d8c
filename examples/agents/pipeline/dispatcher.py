"""The pipeline's entry: takes a job (a list of texts) by request and fans it out.

Each text goes to topic `work` as one message; the `worker` agent, subscribed to `work` through
its template, gets every one of them, and its replicas share them out. The reply is the job id,
to ask the `aggregator` for the result with. See docs/messaging.md, "Try it: the pipeline
example".
"""

from __future__ import annotations

from typing import Any

from cortex.sdk import Agent, Message

TOPIC = "work"


class Dispatcher(Agent):
    async def on_message(self, msg: Message) -> Any:
        texts = _texts(msg)
        if texts is None:
            # Answered, not raised: a malformed job fails the same way on every retry, so
            # retrying it (and finally dead-lettering it) would only delay the caller's answer.
            return {"error": 'a job is a non-empty list of texts: ["...", ...] or {"texts": [...]}'}
        # The request's own id names the job: if this handler is interrupted halfway and the
        # request comes back, the parts go out again under the same job id, and the aggregator,
        # which keeps one result per part, counts each part once.
        job = msg.id
        for part, text in enumerate(texts):
            await self.publish(TOPIC, {"job": job, "part": part, "parts": len(texts), "text": text})
        self.log.info("job dispatched", job=job, parts=len(texts))
        return job  # a str: the reply is text/plain, so `cortex send ... --wait` prints it bare


def _texts(msg: Message) -> list[str] | None:
    if msg.content_type != "application/json":
        return None
    body = msg.json()
    texts = body.get("texts") if isinstance(body, dict) else body
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return None
    return texts
