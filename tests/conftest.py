"""Fixtures shared by every test: a real nats-server per session, isolated prefixes, stores."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex.kernel.logging import configure_logging
from cortex.kernel.settings import Settings, load_settings
from cortex.kernel.store import EventStore, open_store
from tests.support.arango import arango_server
from tests.support.nats import TEST_LOGS_BYTES, NatsServerProcess, delete_platform
from tests.support.stack import TEST_AGENT_MODULES

# The test process is no platform process: its own lines stay out of the streams of the
# platforms it starts in-process (tests/integration/test_log_publishing.py turns it on).
configure_logging("tests", "warning", "console", publish=False)

pytest_plugins = ["tests.support.watchdog", "tests.support.tracing"]


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    """One real nats-server for the session; tests isolate themselves with a prefix."""
    server = NatsServerProcess(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def prefix(nats_server: NatsServerProcess) -> AsyncIterator[str]:
    """A fresh subject/stream root: a separate platform on the shared nats-server. Its
    streams, key-value buckets and object stores are deleted afterwards: JetStream reserves
    their size limits on the session server's disk until then."""
    root = "t" + secrets.token_hex(4)
    yield root
    await delete_platform(nats_server.url, root)


@pytest.fixture
def make_settings(
    tmp_path: Path, nats_server: NatsServerProcess, prefix: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "nats_url": nats_server.url,
            "nats_prefix": prefix,
            "sqlite_synchronous": "NORMAL",
            "shutdown_grace": 5.0,
            "logs_max_bytes": TEST_LOGS_BYTES,
            "lease_ttl": 2.0,
            "agent_modules": TEST_AGENT_MODULES,
        }
        values.update(overrides)
        return load_settings({}, **values)

    return make


@pytest.fixture(scope="session")
def arango_url() -> Iterator[str | None]:
    with arango_server() as (url, reason):
        if url is None:
            pytest.skip(reason)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("arangodb", marks=pytest.mark.arangodb)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh event store of each kind; the ArangoDB leg skips with its reason."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store'}"
    url: str = request.getfixturevalue("arango_url")
    return url


@pytest.fixture
def service_name() -> str:
    """A fresh service name: its own SQLite file or its own ArangoDB collections."""
    return "svc" + secrets.token_hex(4)


@pytest.fixture
async def store(store_url: str, service_name: str) -> AsyncIterator[EventStore]:
    opened = await open_store(store_url, service_name)
    yield opened
    await opened.close()
