"""Central logs: search the stream `CORTEX_LOGS` (the messaging service's index) and follow it
live (server-sent events, read from JetStream here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.aio.msg import Msg

from cortex.contracts.logs import LogFilter, LogLevel, LogLine, LogPage, SearchLogs
from cortex.gateway.sse import LastEventId, connected, follow, resume_after, start
from cortex.gateway.state import Gateway, GatewayDep
from cortex.kernel.errors import NotFound, Unavailable
from cortex.kernel.log_lines import log_line, matches

TAGS = ["logs"]

Service = Annotated[
    str | None,
    QueryParameter(
        description="Lines of this process kind: gateway, registry, lifecycle, "
        "messaging, workflow, host"
    ),
]
Level = Annotated[LogLevel | None, QueryParameter(description="This level or a worse one")]
Agent = Annotated[
    str | None,
    QueryParameter(description="The agent's id or name: lines with its `agent_id`"),
]
Execution = Annotated[str | None, QueryParameter(description="Lines with this `execution_id`")]
Correlation = Annotated[str | None, QueryParameter(description="Lines with this `correlation_id`")]
Text = Annotated[
    str | None,
    QueryParameter(
        min_length=3,
        max_length=200,
        description="Lines whose JSON text holds this (3 to 200 characters; A to Z match "
        "either case)",
    ),
]
MOMENT = {
    # What the parameter's decoding takes: RFC 3339 text, or seconds since 1970 (UTC) within
    # the years 1 to 9999.
    "one_of": [
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
        Schema(type=OpenAPIType.NUMBER, minimum=-62135596800, maximum=253402300799),
        Schema(type=OpenAPIType.NULL),
    ]
}
Since = Annotated[
    datetime | None,
    QueryParameter(
        description="Stored at or after: ISO 8601 (UTC unless it says otherwise) or Unix seconds",
        schema_extra=MOMENT,
    ),
]
Until = Annotated[
    datetime | None,
    QueryParameter(
        description="Stored at or before: ISO 8601 (UTC unless it says otherwise) or Unix seconds",
        schema_extra=MOMENT,
    ),
]


@get(
    "/api/v1/logs",
    tags=TAGS,
    summary="Log lines of every process, newest first, filtered",
    description="Every filter given must match. A page is the same whichever messaging "
    "replica answers it; `next` is the `before` of the page after it, and `last_seq` the "
    "`after` from which `/api/v1/logs/stream` goes on.",
)
async def search_logs(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    service: Service = None,
    level: Level = None,
    agent: Agent = None,
    execution: Execution = None,
    correlation: Correlation = None,
    text: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None,
        QueryParameter(pattern="^[0-9]+$", description="The `next` of a page: the lines before it"),
    ] = None,
) -> LogPage:
    wanted = await _filter(
        gw, request, service, level, agent, execution, correlation, text, since, until
    )
    query = SearchLogs(**msgspec.structs.asdict(wanted), limit=limit, before=before)
    try:
        return await gw.ask("messaging", "log.search", query, LogPage, request)
    except Unavailable as exc:
        if exc.message == "the messaging service is not running":  # nobody took the request
            # A messaging replica takes searches only once its index has caught up.
            raise Unavailable(
                "no messaging replica has its log index ready: it is still reading the log "
                "stream, or the messaging service is not running; retry shortly"
            ) from None
        raise


@get(
    "/api/v1/logs/stream",
    tags=TAGS,
    summary="Server-sent events: each new log line that matches, as it is stored",
    description="The filters of `GET /api/v1/logs`. Each event is `log`, its `id` the line's "
    "`seq` and its data a `LogLine`. `after` (or a reconnecting client's `Last-Event-ID`) "
    "starts after that line, so a page's `last_seq` continues the page without a gap; else "
    "`since` starts with the lines stored since then, and without any of them the stream "
    "starts with the next line stored. An `until` ends the stream.",
    responses={
        200: ResponseSpec(
            LogLine,
            media_type="text/event-stream",
            description="`event: log`, `id: <seq>`, `data: <LogLine>` per line",
        )
    },
)
async def stream_logs(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    service: Service = None,
    level: Level = None,
    agent: Agent = None,
    execution: Execution = None,
    correlation: Correlation = None,
    text: Text = None,
    since: Since = None,
    until: Until = None,
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Start after the line of this `seq`")
    ] = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    wanted = await _filter(
        gw, request, service, level, agent, execution, correlation, text, since, until
    )
    after = resume_after(last_event_id, after)
    connected(gw)
    return ServerSentEvent(_follow(gw, wanted, after))


async def _filter(
    gw: Gateway,
    request: Request[Any, Any, Any],
    service: str | None,
    level: LogLevel | None,
    agent: str | None,
    execution: str | None,
    correlation: str | None,
    text: str | None,
    since: datetime | None,
    until: datetime | None,
) -> LogFilter:
    agent_id = None
    if agent is not None:
        try:
            agent_id = (await gw.agent(agent, request)).id
        except NotFound:
            agent_id = agent  # a purged agent's id still finds the lines it left
    return LogFilter(
        service=service,
        level=level,
        agent_id=agent_id,
        execution_id=execution,
        correlation_id=correlation,
        text=text,
        since=utc(since),
        until=utc(until),
    )


def utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _follow(
    gw: Gateway, wanted: LogFilter, after: int | None
) -> AsyncIterator[ServerSentEventMessage]:
    """Narrowed to one service's subjects when the filter names one; the other filters are
    checked here, line by line."""

    def render(msg: Msg) -> ServerSentEventMessage | None:
        stored_at = msg.metadata.timestamp
        if wanted.until is not None and stored_at > wanted.until:
            raise StopAsyncIteration
        if not matches(wanted, msg.subject, msg.data, stored_at):
            return None
        seq = msg.metadata.sequence.stream
        line = log_line(seq, stored_at, msg.data)
        return ServerSentEventMessage(data=msgspec.json.encode(line).decode(), event="log", id=seq)

    subjects = gw.subjects
    return follow(
        gw,
        subjects.log(wanted.service or "*", "*"),
        subjects.logs_stream,
        start(after, wanted.since),
        render,
    )


ROUTES = [search_logs, stream_logs]
