"""`GET /api/v1/audit`: who changed what and when, from the actors of the stored changes.

Read from `CORTEX_EVENTS`, like `GET /api/v1/events`, but as pages of a bounded scan rather than
a live stream. The actor of a change made through the gateway is `api:<token name>` as the
gateway authenticated the token; a caller cannot set it (a header or a body field naming an
actor is ignored).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter
from nats.errors import TimeoutError as NatsTimeoutError

from cortex.contracts.changes import AuditPage, Change
from cortex.gateway.routes.changes import Kinds, ThingId, change_of, stream_thing
from cortex.gateway.routes.logs import MOMENT, utc
from cortex.gateway.sse import connected, start
from cortex.gateway.state import GatewayDep

SCAN = 20_000
"""Most changes one request reads, matching or not; `next_after` continues from there."""
RELAY_LAG = timedelta(seconds=60)
"""How much later than it happened a change may reach `CORTEX_EVENTS` (each service relays its
stored events): a scan for changes before `until` reads on that far past it. Positions are
by the time a change was stored, which is never before it happened, so `since` misses none."""
IDLE = 2.0
"""Seconds without a change before a scan ends short of the newest (a stream being trimmed)."""


@get(
    "/api/v1/audit",
    tags=["events"],
    summary="Who changed what and when: stored changes by actor, kind, id and time",
    description="Changes oldest first, each with its `actor` (`api:<token name>` for a change "
    "made through the gateway, `workflow:<execution id>` for one a workflow step made). Kept "
    "as long as `GET /api/v1/events` keeps them (`CORTEX_EVENTS_DAYS`, seven by default). A "
    "request reads at most 20,000 changes; `next_after` then says where to go on.",
)
async def audit(
    gw: GatewayDep,
    actor: Annotated[
        str | None,
        QueryParameter(min_length=1, max_length=200, description="Changes by this actor only"),
    ] = None,
    kind: Kinds = None,
    id: ThingId = None,
    since: Annotated[
        datetime | None,
        QueryParameter(
            description="Changes at or after: ISO 8601 (UTC unless it says otherwise) or Unix "
            "seconds",
            schema_extra=MOMENT,
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        QueryParameter(
            description="Changes before: ISO 8601 (UTC unless it says otherwise) or Unix seconds",
            schema_extra=MOMENT,
        ),
    ] = None,
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Changes after the one of this `seq`")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Most changes")] = 100,
) -> AuditPage:
    since, until = utc(since), utc(until)
    stop = _later(until, RELAY_LAG)
    connected(gw)
    subjects = gw.subjects
    js = gw.nc.jetstream()
    newest = (await js.stream_info(subjects.events_stream)).state.last_seq
    if newest == 0 or (after is not None and after >= newest):
        return AuditPage(items=[])
    prefix = f"{subjects.root}.evt."
    kinds: set[str] = set(kind or ())
    subject = f"{prefix}*.{next(iter(kinds))}.>" if len(kinds) == 1 else subjects.events_of()
    config = start(after, since) if after is not None or since else start(0)
    sub = await js.subscribe(
        subject, stream=subjects.events_stream, ordered_consumer=True, config=config
    )
    items: list[Change] = []
    last = after or 0
    try:
        for _ in range(SCAN):
            try:
                msg = await sub.next_msg(timeout=IDLE)
            except (NatsTimeoutError, TimeoutError):
                return AuditPage(items=items)  # nothing more was there to read
            last = msg.metadata.sequence.stream
            if stop is not None and msg.metadata.timestamp >= stop:
                return AuditPage(items=items)
            # The id is in a header: a change to something else is not even decoded.
            change = None if id not in (None, stream_thing(msg)) else change_of(msg, prefix)
            if change and _matches(change, kinds, actor, since, until):
                items.append(change)
                if len(items) == limit:
                    return AuditPage(items=items, next_after=last if last < newest else None)
            if last >= newest:
                return AuditPage(items=items)
    finally:
        await sub.unsubscribe()
    return AuditPage(items=items, next_after=last)


def _later(moment: datetime | None, by: timedelta) -> datetime | None:
    """`moment + by`, None for no moment or one too near the end of the calendar."""
    try:
        return moment + by if moment is not None else None
    except OverflowError:
        return None


def _matches(
    change: Change,
    kinds: set[str],
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> bool:
    return (
        (not kinds or change.kind in kinds)
        and actor in (None, change.actor)
        and (since is None or change.occurred_at >= since)
        and (until is None or change.occurred_at < until)
    )


ROUTES = [audit]
