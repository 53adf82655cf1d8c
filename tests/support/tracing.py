"""The spans the platform makes in the test process, kept in memory while a test records them.

OpenTelemetry takes one tracer provider per process, so the first test that records installs
an SDK provider for the rest of the session. Its sampler records only while a test has the
recording on: the other tests of the session get non-recording spans, as cheap as the API's
own, and no span piles up in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from cortex.kernel.tracing import install


class _WhileRecording(Sampler):
    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self.on:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "WhileRecording"


class _Installed:
    sampler: _WhileRecording | None = None
    exporter = InMemorySpanExporter()


def _install() -> _WhileRecording:
    if _Installed.sampler is None:
        sampler = _WhileRecording()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(_Installed.exporter))
        install(provider)
        _Installed.sampler = sampler
    return _Installed.sampler


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished in this process during the test (`get_finished_spans()`)."""
    sampler = _install()
    _Installed.exporter.clear()
    sampler.on = True
    try:
        yield _Installed.exporter
    finally:
        sampler.on = False
        _Installed.exporter.clear()


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None
