"""Platform changes: every domain event, as `GET /api/v1/events` streams it to a client.

The relay of each service publishes its events on `cortex.evt.<service>.<kind>.<what>` into
the stream `CORTEX_EVENTS` (kept `CORTEX_EVENTS_DAYS`, seven by default). A client that follows
them learns that something changed (an agent created or scaled, an execution's step done)
without polling every list, and one that reconnects with the last `seq` it saw misses nothing
in between.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

ChangeKind = Literal[
    "template",
    "agent",
    "agentname",
    "pool",
    "state",
    "subscription",
    "host",
    "wftemplate",
    "workflow",
    "execution",
]
"""What a change is about: the kind of the event stream it belongs to. `template` and
`wftemplate` are agent and workflow templates; `agentname` is a name's claim by an agent."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One domain event as it was stored and published."""

    seq: int
    """Its place in `CORTEX_EVENTS`; a reconnecting client's `Last-Event-ID`."""
    service: str
    """The service that recorded it: `lifecycle`, `registry`, `messaging` or `workflow`."""
    kind: str
    """One of `ChangeKind` (a kind added later reaches older clients as it is)."""
    id: str
    """The id of the thing that changed (an agent's, an execution's...)."""
    type: str
    """`<kind>.<what happened>`, for example `agent.scaled`."""
    version: int
    """The thing's version after this change (1 for its first event)."""
    occurred_at: datetime
    actor: str | None = None
    """The API token's name that asked for it, when a person or program did."""
    correlation_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """The event's own fields (see the event types under `contracts/schema/`)."""


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """Changes that match an audit query, oldest first."""

    items: list[Change]
    next_after: int | None = None
    """More may match after this `seq` (pass it as `after`); null when the query reached the
    newest change or its `until`."""
