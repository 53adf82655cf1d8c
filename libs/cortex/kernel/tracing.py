"""Traces: OpenTelemetry spans, sent over OTLP/HTTP when `CORTEX_OTLP_ENDPOINT` is set.

Every span of the platform is made by `span`: the gateway's HTTP requests, service calls on
both ends, agent messages sent and handled, workflow executions and their steps (the trace
context travels in NATS headers, see `cortex.kernel.context`). `traced_process` decides once
per process whether they are made. Without an endpoint nothing is: `span` hands back a span
that records nothing, without even the OpenTelemetry API's no-op tracer (whose context
managers cost a service call about 20 microseconds of CPU, client and server together), and
no trace context is read or written.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import Attributes

from cortex.kernel import __version__
from cortex.kernel.settings import Settings

TRACES_PATH = "/v1/traces"

_TRACER = trace.get_tracer("cortex", __version__)
_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)


class _Installed:
    provider: TracerProvider | None = None


def install(provider: TracerProvider) -> None:
    """Make spans with `provider` from now on (OpenTelemetry takes one per process)."""
    trace.set_tracer_provider(provider)
    _Installed.provider = provider


def recording() -> bool:
    """Whether this process makes spans (and reads and writes trace context)."""
    return _Installed.provider is not None


def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    *,
    attributes: Attributes = None,
    parent: Context | None = None,
) -> contextlib.AbstractContextManager[Span]:
    """A span, current inside: a child of the current span, or of the trace in `parent` (a
    context extracted from headers). Where the process makes no spans, a span that records
    nothing."""
    if _Installed.provider is None:
        return _NO_SPAN
    return _TRACER.start_as_current_span(name, context=parent, kind=kind, attributes=attributes)


def traces_url(endpoint: str) -> str:
    """Where an OTLP/HTTP collector takes spans: its base URL and `/v1/traces` (a URL that ends
    so already is taken as it is)."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


@contextlib.contextmanager
def traced_process(settings: Settings, service: str) -> Iterator[None]:
    """Around a process's main. With an endpoint, this process's spans are batched (a
    background thread sends them) under the service name `<prefix>-<service>`, as its NATS
    connection is named, and what is still batched is sent at the end. Sampling follows the
    standard `OTEL_TRACES_SAMPLER` variables (default: every trace)."""
    if not settings.otlp_endpoint:
        yield
        return
    resource = Resource.create(
        {
            "service.name": f"{settings.nats_prefix}-{service}",
            "service.namespace": settings.nats_prefix,
            "service.version": __version__,
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    try:
        yield
    finally:
        provider.shutdown()
