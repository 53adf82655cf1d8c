"""The event envelope: how every domain event is stored, published and read back."""

from __future__ import annotations

from datetime import datetime

import msgspec


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable fact, as the event store hands it out and as it travels on `cortex.evt.>`.

    `version` counts 1, 2, 3... within `stream_id`; `position` is the store-wide commit order
    (the resumable cursor of `read_all`). `type` reads `<stream_type>.<what happened>`, for
    example `agent.scaled`. `data` is the JSON of the event's own Struct, decoded by type.
    """

    event_id: str
    stream_id: str
    stream_type: str
    version: int
    position: int
    type: str
    data: msgspec.Raw
    occurred_at: datetime
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    schema_version: int = 1


class QuarantinedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event a service skips because it cannot decode it, even after upcasting: kept
    in the store untouched, reported in `/api/v1/status` until the service is fixed."""

    event_id: str
    stream_id: str
    type: str
    schema_version: int
    position: int
    reader: str
    """The read model (`projection agents`) or aggregate (`aggregate agent`) that met it."""
    error: str
    """Why it does not decode."""
    at: datetime
    """When this instance first met it."""
