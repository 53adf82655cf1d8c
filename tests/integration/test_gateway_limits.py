"""Per-token rate limits and per-route body limits, as a client meets them; nothing here needs
NATS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.gateway import bearer, gateway_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with gateway_client(tmp_path, CORTEX_RATE_LIMIT="0.5", CORTEX_RATE_BURST="3") as c:
        yield c


def test_a_token_past_its_burst_gets_429_with_retry_after_and_others_go_on(
    client: TestClient[Litestar],
) -> None:
    other = client.post("/api/v1/tokens", json={"name": "other", "role": "viewer"}).json()
    # The admin token spent one request of its burst of 3 on making the other token.
    assert [client.get("/api/v1/whoami").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/whoami")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "rate_limited"
    assert problem["detail"].startswith("token 'admin' made more than 0.5 requests a second")

    assert client.get("/api/v1/whoami", headers=bearer(other["token"])).json() == {
        "name": "other",
        "role": "viewer",
    }
    # Public routes are not counted.
    assert client.get("/api/v1/health").status_code == 200


def test_bodies_are_limited_per_route(client: TestClient[Litestar]) -> None:
    big = {"name": "big", "handler": "cortex.sdk.builtin:Echo", "description": "x" * 9_000_000}
    refused = client.post("/api/v1/templates", json=big)
    assert refused.status_code == 413
    assert refused.json()["code"] == "too_large"
    # A message's payload may be far bigger: this one gets past the limit to the missing NATS.
    message = {"payload": "x" * 9_000_000}
    sent = client.post("/api/v1/agents/someone/messages", json=message)
    assert sent.status_code not in (413, 429), sent.text
