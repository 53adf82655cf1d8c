"""`GET /api/v1/dlq/events`: dead letters as they arrive, as server-sent events.

Read from `CORTEX_DLQ` itself, where agent hosts put each message they give up on, so a view
of the queue learns of a new dead letter at once and a client that reconnects with the last
`seq` it saw misses none.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.aio.msg import Msg

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeadLetterArrived
from cortex.gateway.document import problem
from cortex.gateway.sse import LastEventId, connected, follow, resume_after, start
from cortex.gateway.state import GatewayDep


@get(
    "/api/v1/dlq/events",
    tags=["dead letters"],
    summary="Server-sent events: each dead letter as it arrives",
    description="Each event is named `dead_letter`, its `id` is its `seq` in the queue and its "
    "data a `DeadLetterArrived`; `GET /api/v1/dlq` has the dead letter itself. `agent` "
    "narrows it to one agent's. `after` (or a reconnecting client's `Last-Event-ID`) starts "
    "after that `seq`; without it the stream starts with the next dead letter.",
    responses={
        200: ResponseSpec(
            DeadLetterArrived,
            media_type="text/event-stream",
            description="`event: dead_letter`, `id: <seq>`, `data: <DeadLetterArrived>`",
            generate_examples=False,
        ),
        404: problem(404, "No agent of that id or name (`agent`)"),
    },
)
async def stream_dead_letters(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    agent: Annotated[str | None, QueryParameter(description="Agent id or name")] = None,
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Start after the dead letter of this `seq`")
    ] = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    after = resume_after(last_event_id, after)
    connected(gw)
    subjects = gw.subjects
    agent_id = (await gw.agent(agent, request)).id if agent else None
    prefix = subjects.dead_letter("x")[:-1]  # `<root>.dlq.`, then the agent's id

    def render(msg: Msg) -> ServerSentEventMessage:
        arrived = DeadLetterArrived(
            seq=msg.metadata.sequence.stream,
            agent_id=msg.subject.removeprefix(prefix),
            reason=(msg.headers or {}).get(m.DEAD_REASON, "unknown"),
            at=msg.metadata.timestamp,
        )
        return ServerSentEventMessage(
            data=msgspec.json.encode(arrived).decode(), event="dead_letter", id=arrived.seq
        )

    subject = subjects.dead_letter(agent_id) if agent_id else f"{prefix}>"
    return ServerSentEvent(follow(gw, subject, subjects.dead_letter_stream, start(after), render))


ROUTES = [stream_dead_letters]
