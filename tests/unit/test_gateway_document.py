"""What the OpenAPI document declares besides the routes' own responses, and the answers that
back it: problem documents, `Allow`, a missing body (tests/e2e/test_openapi_conformance.py
checks the whole of it against a live gateway)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from cortex.gateway.app import openapi_document
from cortex.gateway.document import allow_every_method
from cortex.gateway.problems import EXCEPTION_HANDLERS, PROBLEM_JSON

METHODS = {"get", "put", "post", "delete", "patch"}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_error_an_operation_declares_is_a_problem_document() -> None:
    for method, path, operation in operations():
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert "500" in errors, (method, path)
        for status, response in errors.items():
            if (path, status) == ("/ready", "503"):
                continue  # not ready is the readiness document itself
            assert response["content"] == {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, status)


def test_errors_follow_from_what_an_operation_has() -> None:
    for method, path, operation in operations():
        statuses = set(operation["responses"])
        if operation.get("security") != [{}]:
            assert {"401", "403", "503", "504"} <= statuses, (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= statuses, (method, path)
        elif "400" in statuses:
            raise AssertionError(f"{method} {path}: 400 without a body")


def test_event_streams_declare_text_event_stream_with_the_schema_of_one_event() -> None:
    document = openapi_document()
    for path in (
        "/api/v1/events",
        "/api/v1/logs/stream",
        "/api/v1/executions/{execution_id}/events",
    ):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        event = content["text/event-stream"]["schema"]
        assert event["required"] == ["data"]
        assert event["properties"]["data"]["contentMediaType"] == "application/json"


def test_a_body_a_route_may_go_without_is_not_required() -> None:
    paths = openapi_document()["paths"]
    assert paths["/api/v1/agents/{ref}/deploy"]["post"]["requestBody"]["required"] is False
    execute = paths["/api/v1/workflows/{workflow_id}/execute"]["post"]
    assert execute["requestBody"]["required"] is False
    assert paths["/api/v1/agents/{ref}/scale"]["post"]["requestBody"]["required"] is True


def test_state_writes_declare_their_body_if_match_and_etag() -> None:
    item = openapi_document()["paths"]["/api/v1/agents/{ref}/state"]
    for method in ("put", "patch"):
        assert item[method]["requestBody"]["required"] is True
        assert "412" in item[method]["responses"]
        headers = {p["name"]: p for p in item[method]["parameters"] if p["in"] == "header"}
        assert headers["If-Match"]["schema"]["type"] == "string"
    assert "ETag" in item["get"]["responses"]["200"]["headers"]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    n: int


@get("/things/{name:str}")
async def get_thing(name: FromPath[str]) -> dict[str, str]:
    return {"name": name}


@delete("/things/{name:str}", status_code=204)
async def delete_thing(name: FromPath[str]) -> None:
    return None


@post("/things")
async def create_thing(data: JSONBody[Body]) -> dict[str, int]:
    return {"n": data.n}


def client() -> TestClient[Litestar]:
    app = Litestar(
        [get_thing, delete_thing, create_thing],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[allow_every_method],
        openapi_config=None,
        logging_config=None,
    )
    return TestClient(app)


def test_options_and_405_name_every_method_of_the_path() -> None:
    with client() as http:
        assert http.options("/things/a").headers["allow"] == "DELETE, GET, OPTIONS"
        refused = http.put("/things/a", json={})
        assert refused.status_code == 405
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert set(refused.headers["allow"].split(", ")) == {"DELETE", "GET", "OPTIONS"}


def test_a_missing_body_is_refused_naming_the_body() -> None:
    with client() as http:
        refused = http.post("/things")
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            {"field": "$", "message": "the request has no body; this needs a JSON body"}
        ]
        assert http.post("/things", content=b"{nope").status_code == 400
