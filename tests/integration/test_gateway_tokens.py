"""Admins manage API tokens and everyone reads the running settings over HTTP, as the
dashboard does; nothing here needs NATS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.gateway import bearer, gateway_client
from tests.support.stack import ADMIN_TOKEN


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with gateway_client(tmp_path, CORTEX_STORE="arangodb://root:db-password@db:8529/cortex") as c:
        yield c


def test_a_token_made_by_an_admin_works_at_once_is_listed_and_revoked(
    client: TestClient[Litestar],
) -> None:
    made = client.post("/api/v1/tokens", json={"name": "ci", "role": "operator"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["role"] == "operator"

    me = client.get("/api/v1/whoami", headers=bearer(token))
    assert me.json() == {"name": "ci", "role": "operator"}

    listed = client.get("/api/v1/tokens").json()["items"]
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "operator")]
    assert token not in str(listed), "a listed token never shows the token"

    # An operator may not manage tokens, not even its own.
    assert client.get("/api/v1/tokens", headers=bearer(token)).status_code == 403
    refused = client.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(token))
    assert refused.status_code == 403

    assert client.delete("/api/v1/tokens/ci").status_code == 204
    assert client.get("/api/v1/whoami", headers=bearer(token)).status_code == 401
    assert client.delete("/api/v1/tokens/ci").status_code == 404


def test_bad_token_requests_name_the_problem_and_change_nothing(
    client: TestClient[Litestar],
) -> None:
    client.post("/api/v1/tokens", json={"name": "ci"})
    twice = client.post("/api/v1/tokens", json={"name": "ci", "role": "admin"})
    assert twice.status_code == 409
    bad_role = client.post("/api/v1/tokens", json={"name": "y", "role": "root"})
    assert bad_role.status_code in (400, 422)
    assert "role" in bad_role.text
    bad_name = client.post("/api/v1/tokens", json={"name": "two words"})
    assert bad_name.status_code in (400, 422)
    assert "name" in bad_name.text
    listed = client.get("/api/v1/tokens").json()["items"]
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "viewer")]


def test_the_running_settings_are_shown_without_secrets(client: TestClient[Litestar]) -> None:
    shown = client.get("/api/v1/settings")
    assert shown.status_code == 200
    body = shown.json()
    assert body["store"] == "arangodb://root:***@db:8529/cortex"
    assert body["admin_token"] == "***"
    assert ADMIN_TOKEN not in shown.text
    assert "db-password" not in shown.text
    assert body["http_port"] == 8080
