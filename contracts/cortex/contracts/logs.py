"""Central logs: every process's log lines, searched and followed.

Each process publishes its structlog lines, as JSON, on `cortex.log.<service>.<level>`; the
stream `CORTEX_LOGS` keeps them (3 days, at most `CORTEX_LOGS_MAX_BYTES`). The messaging
service indexes the stream and answers `log.search` on `cortex.messaging.log.search`; the
gateway serves it as `GET /api/v1/logs` and follows the stream itself for
`GET /api/v1/logs/stream`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
"""A line's `level`, from the least to the most severe."""

SearchText = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=200,
        description="3 to 200 characters, found anywhere in the line's JSON text; letters "
        "A to Z match either case",
    ),
]
LogPageSize = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


class LogFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a line must match: every filter given (none: every line)."""

    service: str | None = None
    """The process kind that logged it: `gateway`, `registry`, `lifecycle`, `messaging`,
    `workflow`, `host`."""
    level: LogLevel | None = None
    """This level or a more severe one."""
    agent_id: str | None = None
    execution_id: str | None = None
    correlation_id: str | None = None
    text: SearchText | None = None
    since: Instant | None = None
    """Stored at or after (the stream's time, within milliseconds of the line's own
    `timestamp`)."""
    until: Instant | None = None
    """Stored at or before."""


class SearchLogs(LogFilter, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`log.search`: the newest lines that match, newest first."""

    limit: LogPageSize = 100
    before: str | None = None
    """`next` of the previous page: the lines stored before it."""


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    """The line's sequence in the stream `CORTEX_LOGS`: later lines have greater ones."""
    stored_at: datetime
    line: dict[str, Any]
    """The line as its process logged it: `timestamp`, `level`, `service`, `event` and the
    context bound to it (`correlation_id`, `agent_id`, `execution_id`, ...)."""


class LogPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[LogLine]
    """Newest first."""
    next: str | None = None
    """Pass as `before` for the older lines; absent on the last page."""
    last_seq: int
    """The stream's last sequence when the page was answered: the page is the same whichever
    replica answers it, and following the stream from here (`after`) misses nothing."""
