"""The correlation id and trace context a piece of work binds, sends on, and takes in."""

from __future__ import annotations

import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cortex.contracts import headers as h
from cortex.gateway.request_context import request_id
from cortex.kernel.context import bound, correlation_id, incoming, outgoing, sent_again
from cortex.kernel.tracing import span, traces_url
from tests.support.tracing import parent_of


def test_outgoing_headers_carry_the_bound_correlation_id_or_start_one() -> None:
    with bound("c-1"):
        assert outgoing({})[h.CORRELATION_ID] == "c-1"
        # A caller that names one keeps it.
        assert outgoing({h.CORRELATION_ID: "mine"})[h.CORRELATION_ID] == "mine"
    first, second = outgoing({}), outgoing({})
    assert first[h.CORRELATION_ID] != second[h.CORRELATION_ID]
    assert correlation_id() is None


def test_bound_fields_join_log_lines_inside_and_leave_with_it() -> None:
    with bound("c-1", agent_id="a-1", step=None):
        assert structlog.contextvars.get_contextvars() == {
            "correlation_id": "c-1",
            "agent_id": "a-1",
        }
        with bound(step="s-1"):
            assert correlation_id() == "c-1"
            assert structlog.contextvars.get_contextvars()["step"] == "s-1"
        assert "step" not in structlog.contextvars.get_contextvars()
    assert structlog.contextvars.get_contextvars() == {}
    assert correlation_id() is None


def test_incoming_work_continues_the_senders_correlation_and_trace(
    spans: InMemorySpanExporter,
) -> None:
    with span("sender") as sender, bound("c-1"):
        headers = outgoing({})
    assert headers["traceparent"].split("-")[1] == f"{sender.get_span_context().trace_id:032x}"

    with incoming(headers, "receiver", SpanKind.CONSUMER, agent_id="a-1"):
        assert correlation_id() == "c-1"
        fields = structlog.contextvars.get_contextvars()
        assert fields["trace_id"] == f"{sender.get_span_context().trace_id:032x}"
        assert fields["agent_id"] == "a-1"
    (receiver,) = [s for s in spans.get_finished_spans() if s.name == "receiver"]
    assert parent_of(receiver) == sender.get_span_context().span_id
    assert receiver.kind == SpanKind.CONSUMER

    # Nothing in the headers: the work begins a correlation and a trace of its own.
    with incoming({}, "alone", SpanKind.SERVER) as alone:
        assert correlation_id() not in (None, "c-1")
        assert alone.get_span_context().trace_id != sender.get_span_context().trace_id


def test_a_message_sent_again_belongs_to_the_work_that_sends_it_again(
    spans: InMemorySpanExporter,
) -> None:
    with span("first sending"), bound("first"):
        headers = outgoing({"X-Own": "kept"})
    with span("replay") as replay, bound("replay"):
        again = sent_again(dict(headers))
    assert again[h.CORRELATION_ID] == "replay"
    assert again["traceparent"] != headers["traceparent"]
    assert f"{replay.get_span_context().span_id:016x}" in again["traceparent"]
    assert again["X-Own"] == "kept"


def test_spans_go_to_the_collectors_traces_path() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://c.example/otlp/v1/traces") == "https://c.example/otlp/v1/traces"


def test_a_callers_request_id_is_taken_when_it_can_travel_in_a_header() -> None:
    assert request_id("req-42") == "req-42"
    assert request_id("a" * 200) == "a" * 200
    for unusable in (None, "", "two words", "a" * 201, "caf\u00e9", "line\nbreak"):
        made = request_id(unusable)
        assert made != unusable
        assert made
