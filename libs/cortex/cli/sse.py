"""Server-sent events (`text/event-stream`) read from the lines of a streamed HTTP answer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    """The `event:` field; `message` when the server gave none."""
    data: str
    """The `data:` lines, joined with newlines."""
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Events as the HTML standard reads them: fields up to a blank line make one event,
    `:` lines are comments (the gateway's keep-alives), and an event without data is none."""
    event = ""
    data: list[str] | None = None
    last_id: str | None = None
    for line in lines:
        if not line:
            if data is not None:
                yield ServerSentEvent(event or "message", "\n".join(data), last_id)
            event, data = "", None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")  # only the one space after the colon is syntax
        if field == "event":
            event = value
        elif field == "data":
            data = [*(data or []), value]
        elif field == "id":
            last_id = value
    # An event the stream ended in the middle of is incomplete: the standard drops it too.
