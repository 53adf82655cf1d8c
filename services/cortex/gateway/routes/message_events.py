"""Messages' lives as server-sent events: what the agent hosts report about each delivery
(`GET /api/v1/agents/{ref}/messages/events`) and each dead letter as it arrives
(`GET /api/v1/dlq/events`).

Read from the streams the hosts write (`CORTEX_MSGSTATUS`, `CORTEX_DLQ`), so a view learns of a
change at once, and a client that reconnects with the last `seq` it saw misses none.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.aio.msg import Msg

from cortex.contracts import messages as m
from cortex.contracts.messaging import DeadLetterArrived, StatusUpdate
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


_STATUS = msgspec.json.Decoder(StatusUpdate)


@get(
    "/api/v1/agents/{ref:str}/messages/events",
    tags=["messages"],
    summary="Server-sent events: what becomes of each message to this agent, as it happens",
    description="Each event is named `message_status`, its `id` is its `seq` and its data a "
    "`StatusUpdate` (delivered, acked, failed... as the agent host reports it); "
    "`GET /api/v1/agents/{ref}/messages` has the messages themselves. `after` (or a "
    "reconnecting client's `Last-Event-ID`) starts after that `seq`; without it the stream "
    "starts with the next report.",
    responses={
        200: ResponseSpec(
            StatusUpdate,
            media_type="text/event-stream",
            description="`event: message_status`, `id: <seq>`, `data: <StatusUpdate>`",
            generate_examples=False,
        ),
        404: problem(404, "No agent of that id or name"),
    },
)
async def stream_message_statuses(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Start after the report of this `seq`")
    ] = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    after = resume_after(last_event_id, after)
    connected(gw)
    agent_id = (await gw.agent(ref, request)).id

    def render(msg: Msg) -> ServerSentEventMessage | None:
        try:
            report = _STATUS.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # not a host's report: nothing a client could use
        return ServerSentEventMessage(
            data=msgspec.json.encode(report).decode(),
            event="message_status",
            id=msg.metadata.sequence.stream,
        )

    subject = gw.subjects.msg_statuses_to(agent_id)
    return ServerSentEvent(follow(gw, subject, gw.subjects.status_stream, start(after), render))


ROUTES = [stream_dead_letters, stream_message_statuses]
