"""`GET /api/v1/events`: the platform's changes, live, as server-sent events.

Read here from `CORTEX_EVENTS` (every service's relayed domain events), so that a client keeps
one stream open for everything it shows instead of polling each list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.aio.msg import Msg

from cortex.contracts import headers as h
from cortex.contracts.changes import Change, ChangeKind
from cortex.contracts.events import EventEnvelope
from cortex.gateway.sse import LastEventId, connected, follow, resume_after, start
from cortex.gateway.state import Gateway, GatewayDep
from cortex.kernel.logging import get_logger
from cortex.kernel.secrets import mask

log = get_logger()

_ENVELOPE = msgspec.json.Decoder(EventEnvelope)

Kinds = Annotated[
    list[ChangeKind] | None,
    QueryParameter(description="Changes to things of these kinds only (repeatable)"),
]
ThingId = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=200, description="Changes to the thing with this id only"
    ),
]


@get(
    "/api/v1/events",
    tags=["events"],
    summary="Server-sent events: every change to the platform, as it happens",
    description="Each event is named by its type (`agent.created`, `execution.step_succeeded`"
    "...), its `id` is its `seq` and its data a `Change`. `kind` (repeatable) and `id` narrow "
    "it. `after` (or a reconnecting client's `Last-Event-ID`) starts after that change, so a "
    "client that lost its connection, or whose gateway restarted, misses nothing in between "
    "(changes are kept `CORTEX_EVENTS_DAYS`, seven days by default); without it the stream "
    "starts with the next change.",
    responses={
        200: ResponseSpec(
            Change,
            media_type="text/event-stream",
            description="`event: <type>`, `id: <seq>`, `data: <Change>` per change",
            generate_examples=False,
        )
    },
)
async def stream_changes(
    gw: GatewayDep,
    kind: Kinds = None,
    id: ThingId = None,
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Start after the change of this `seq`")
    ] = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    after = resume_after(last_event_id, after)
    connected(gw)
    return ServerSentEvent(_follow(gw, set(kind or ()), id, after))


def stream_thing(msg: Msg) -> str:
    """The id of the thing an event of `CORTEX_EVENTS` changed, from its stream id header
    (`<kind>-<the thing's id>`)."""
    return str((msg.headers or {}).get(h.STREAM_ID, "")).partition("-")[2]


def change_of(msg: Msg, prefix: str) -> Change | None:
    """The change a message of `CORTEX_EVENTS` carries (`prefix`: `<root>.evt.`); None for a
    message that is not an event of ours."""
    try:
        event = _ENVELOPE.decode(msg.data)
    except msgspec.DecodeError as exc:  # nothing a client can use
        log.warning("event not sent: undecodable", subject=msg.subject, error=str(exc))
        return None
    return Change(
        seq=msg.metadata.sequence.stream,
        service=msg.subject.removeprefix(prefix).split(".", 1)[0],
        kind=event.stream_type,
        # Stream ids read `<kind>-<the thing's id>`: the id a client knows.
        id=event.stream_id.partition("-")[2] or event.stream_id,
        type=event.type,
        version=event.version,
        occurred_at=event.occurred_at,
        actor=event.actor,
        correlation_id=event.correlation_id,
        # Secret config values are stored sealed, and not shown even so.
        data=mask(msgspec.json.decode(event.data)),
    )


def _follow(
    gw: Gateway, kinds: set[str], thing: str | None, after: int | None
) -> AsyncIterator[ServerSentEventMessage]:
    """Narrowed on the server to one kind's subjects when one is asked for; kinds and the id
    are otherwise checked here."""
    subjects = gw.subjects
    subject = subjects.events_of()
    prefix = f"{subjects.root}.evt."  # then `<service>.<type>`
    if len(kinds) == 1:
        subject = f"{prefix}*.{next(iter(kinds))}.>"

    def render(msg: Msg) -> ServerSentEventMessage | None:
        if thing is not None and stream_thing(msg) != thing:
            return None  # told by a header, without decoding the event
        change = change_of(msg, prefix)
        if change is None or (kinds and change.kind not in kinds):
            return None
        return ServerSentEventMessage(
            data=msgspec.json.encode(change).decode(), event=change.type, id=change.seq
        )

    return follow(gw, subject, subjects.events_stream, start(after), render)


ROUTES = [stream_changes]
