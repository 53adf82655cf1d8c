"""A published log line as the platform reads it back, and whether it matches a `LogFilter`.

One set of rules for the messaging service's index (`GET /api/v1/logs`) and the gateway's live
stream (`GET /api/v1/logs/stream`), so a line one finds the other finds too. The subject says
the service and level (`cortex.log.<service>.<level>`); the line's JSON says the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cortex.contracts.logs import LogFilter, LogLine

SEVERITY = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
"""Levels as numbers (the stdlib's), so that `level` can mean "this one or worse"."""


def severity(level: str) -> int:
    """A level's number; a level of its own (a library's) counts as `info`."""
    return SEVERITY.get(level, SEVERITY["info"])


class LineContext(msgspec.Struct, frozen=True):
    """The ids a line may be filtered by; any other field is left in the line."""

    agent_id: str | None = None
    execution_id: str | None = None
    correlation_id: str | None = None


_context = msgspec.json.Decoder(LineContext)


def line_context(data: bytes) -> LineContext:
    """The ids in a line's JSON. An id logged as another type (a number) is taken as text; a
    line that is not a JSON object has none."""
    try:
        return _context.decode(data)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return LineContext()
    try:
        fields: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return LineContext()

    def text(name: str) -> str | None:
        value = fields.get(name)
        return None if value is None else str(value)

    return LineContext(text("agent_id"), text("execution_id"), text("correlation_id"))


def service_and_level(subject: str) -> tuple[str, str]:
    """(service, level) of `<root>.log.<service>.<level>`."""
    _, _, rest = subject.partition(".log.")
    service, _, level = rest.partition(".")
    return service, level


def folded(text: str) -> bytes:
    """`text` as the search compares it: UTF-8 with A to Z in lower case, as SQLite's `lower()`
    folds (the index compares with `instr(lower(line), ...)`)."""
    return text.encode().lower()


def matches(
    wanted: LogFilter,
    subject: str,
    data: bytes,
    stored_at: datetime | None,
    context: LineContext | None = None,
) -> bool:
    """Whether the line `data`, published on `subject` and stored at `stored_at`, matches
    every filter of `wanted`."""
    service, level = service_and_level(subject)
    if wanted.service is not None and service != wanted.service:
        return False
    if wanted.level is not None and severity(level) < severity(wanted.level):
        return False
    if wanted.agent_id or wanted.execution_id or wanted.correlation_id:
        ids = context or line_context(data)
        for want, have in (
            (wanted.agent_id, ids.agent_id),
            (wanted.execution_id, ids.execution_id),
            (wanted.correlation_id, ids.correlation_id),
        ):
            if want is not None and want != have:
                return False
    if wanted.text is not None and folded(wanted.text) not in data.lower():
        return False
    if stored_at is not None:
        if wanted.since is not None and stored_at < wanted.since:
            return False
        if wanted.until is not None and stored_at > wanted.until:
            return False
    return True


_object = msgspec.json.Decoder(dict[str, Any])


def log_line(seq: int, stored_at: datetime, data: bytes | str) -> LogLine:
    """The line as the API shows it; one that is not a JSON object is kept as its `event`."""
    try:
        line = _object.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = data if isinstance(data, str) else data.decode(errors="replace")
        line = {"event": text}
    return LogLine(seq=seq, stored_at=stored_at, line=line)
