"""A process run with `CORTEX_OTLP_ENDPOINT` sends its spans to that collector over OTLP/HTTP,
under its service's name, and what is still batched goes out as it stops."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PROCESS = """
from cortex.kernel.settings import load_settings
from cortex.kernel.tracing import span, traced_process

with traced_process(load_settings(), "probe"):
    with span("probe span"):
        pass
"""


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.received: list[tuple[str, str, bytes]] = []
        """Path, content type and body of each export request."""


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what was received."""


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_process_with_an_endpoint_sends_its_spans_there_as_it_stops(
    collector: Collector,
) -> None:
    env = {
        **os.environ,
        "CORTEX_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}/",
        "CORTEX_NATS_PREFIX": "tprobe",
    }
    subprocess.run([sys.executable, "-c", PROCESS], env=env, check=True, timeout=60)

    ((path, content_type, body),) = collector.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert b"probe span" in body
    assert b"tprobe-probe" in body  # the service's name, as a resource attribute
