"""Where the ArangoDB leg of the event store suite gets a real server, or why it is skipped.

CORTEX_TEST_ARANGO_URL (`arangodb://root:pw@host:8529/cortex_test`) wins; otherwise
testcontainers starts ArangoDB if a Docker engine answers. Never a fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def arango_server() -> Iterator[tuple[str | None, str]]:
    """Yields (url, "") when a server is reachable, else (None, reason to skip)."""
    url = os.environ.get("CORTEX_TEST_ARANGO_URL")
    if url:
        yield url, ""
        return
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        yield (
            None,
            (
                "no ArangoDB server: CORTEX_TEST_ARANGO_URL is not set and no Docker engine is "
                f"reachable for testcontainers ({type(exc).__name__}: {exc})"
            ),
        )
        return
    from testcontainers.arangodb import ArangoDbContainer

    with ArangoDbContainer("arangodb:3.12", arango_root_password="cortex") as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(8529)
        yield f"arangodb://root:cortex@{host}:{port}/cortex_test", ""
