"""The gateway in the test process, without NATS, signed in as admin: for what it decides by
itself (tokens, settings, limits)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from litestar import Litestar
from litestar.testing import TestClient

from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.kernel.settings import load_settings
from tests.support.stack import ADMIN_TOKEN


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def gateway_client(data_dir: Path, **env: str) -> Iterator[TestClient[Litestar]]:
    """`env`: more `CORTEX_*` settings."""
    settings = load_settings(
        {"CORTEX_DATA_DIR": str(data_dir), "CORTEX_ADMIN_TOKEN": ADMIN_TOKEN, **env}
    )
    with TestClient(create_app(Gateway(settings))) as client:
        client.headers.update(bearer(ADMIN_TOKEN))
        yield client
