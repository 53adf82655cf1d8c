"""What ties together the work one request causes, across processes: its correlation id and
its trace.

A user action (an HTTP request, a message from outside the platform) gets a correlation id. It
travels in the `Cortex-Correlation-Id` header of every service call and agent message the
action causes, next to the W3C trace context (`traceparent`, `tracestate`) of the span that
sent it (where spans are made: `cortex.kernel.tracing`). The process that takes the call or
message in binds both for the work it does (`incoming`): each log line of that work carries
`correlation_id` (and `trace_id` where there is a trace) through structlog's contextvars, its
span continues the sender's trace, and whatever it sends on carries both again (`outgoing`).
asyncio copies context variables into the tasks a handler starts, so work it leaves running
keeps them too.

Service calls (`bus.rpc`), agent messages (`messages`), the service runtime, the agent host,
the workflow runner and the gateway all go through here, so the headers are read and written,
and the fields named, in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

import structlog
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import Attributes

from cortex.contracts import headers as h
from cortex.kernel.ids import new_id
from cortex.kernel.tracing import recording, span

_correlation_id: ContextVar[str | None] = ContextVar("cortex_correlation_id", default=None)


def correlation_id() -> str | None:
    """The correlation id of the work under way, if any is bound."""
    return _correlation_id.get()


def outgoing(headers: dict[str, str]) -> dict[str, str]:
    """`headers` (changed in place) with the correlation id of the work under way, or a new one
    when none is bound (the call or message starts a correlation of its own), and the current
    trace context. A correlation id already in `headers` is kept."""
    headers.setdefault(h.CORRELATION_ID, _correlation_id.get() or new_id())
    if recording():
        propagate.inject(headers)
    return headers


def sent_again(headers: dict[str, str]) -> dict[str, str]:
    """The headers of a message sent once before (a replayed dead letter), changed in place:
    the correlation id and trace of the work that sends it again replace the first sending's."""
    for name in (h.CORRELATION_ID, *propagate.get_global_textmap().fields):
        headers.pop(name, None)
    return outgoing(headers)


@contextlib.contextmanager
def bound(correlation_id: str | None = None, **fields: str | None) -> Iterator[None]:
    """For the work inside: `correlation_id` (if given) is what `outgoing` sends on, and it and
    `fields` (`agent_id`, `execution_id`, `step`; None is left out) join every log line, with
    the current span's `trace_id` when there is a trace."""
    values = {name: value for name, value in fields.items() if value is not None}
    token = None
    if correlation_id is not None:
        token = _correlation_id.set(correlation_id)
        values["correlation_id"] = correlation_id
    if recording():
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            values["trace_id"] = trace.format_trace_id(span_context.trace_id)
    try:
        with structlog.contextvars.bound_contextvars(**values):
            yield
    finally:
        if token is not None:
            _correlation_id.reset(token)


@contextlib.contextmanager
def incoming(
    headers: Mapping[str, str],
    name: str,
    kind: SpanKind,
    *,
    correlation_id: str | None = None,
    attributes: Attributes = None,
    **fields: str | None,
) -> Iterator[Span]:
    """The work done for a call or a message that arrived with `headers`: a span `name` of
    `kind` that continues the sender's trace (or begins one), and the correlation id bound (the
    one given, else the header's, else a new one) with `fields`."""
    parent = propagate.extract(headers) if recording() else None
    with (
        span(name, kind, attributes=attributes, parent=parent) as current,
        bound(correlation_id or headers.get(h.CORRELATION_ID) or new_id(), **fields),
    ):
        yield current
