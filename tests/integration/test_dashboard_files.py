"""The gateway serves a dashboard build at `/`: what a browser gets for each kind of path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.kernel.settings import load_settings
from tests.support.stack import ADMIN_TOKEN

INDEX = "<!doctype html><title>CodeValdCortex</title><script src=/assets/app-3f9a.js></script>"


def client_for(data: Path, dashboard: Path | None) -> TestClient[Litestar]:
    env = {"CORTEX_DATA_DIR": str(data), "CORTEX_ADMIN_TOKEN": ADMIN_TOKEN}
    env["CORTEX_DASHBOARD_DIR"] = str(dashboard or data / "no-build")
    return TestClient(create_app(Gateway(load_settings(env))))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / "assets" / "app-3f9a.js").write_text("console.log('cortex')")
    (build / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not served")
    with client_for(tmp_path, build) as running:
        yield running


def test_the_app_and_its_assets_are_served_with_their_cache_rules(
    client: TestClient[Litestar],
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.text == INDEX
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"

    script = client.get("/assets/app-3f9a.js")
    assert script.status_code == 200
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"

    icon = client.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["cache-control"] == "no-cache", "a name without a hash is revalidated"


@pytest.mark.parametrize("path", ["/agents", "/agents/greeter-1", "/executions/x/y", "/signin"])
def test_every_path_of_the_app_answers_with_the_app(
    client: TestClient[Litestar],
    path: str,
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/assets/app-old.js", "/logo.png", "/../secret.txt"])
def test_a_missing_file_is_a_404_not_the_app(
    client: TestClient[Litestar],
    path: str,
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "not served" not in response.text
    assert INDEX not in response.text


def test_the_api_keeps_its_own_answers_beside_the_app(
    client: TestClient[Litestar],
) -> None:
    unknown = client.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"

    assert client.get("/health").json()["status"] == "ok"
    assert client.post("/agents").status_code == 404, "only GET reaches the app"

    no_token = client.get("/api/v1/whoami")
    assert no_token.status_code == 401
    me = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert me.json() == {"name": "admin", "role": "admin"}


def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    with client_for(tmp_path, None) as client:
        response = client.get("/")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "make up" in response.json()["detail"]
