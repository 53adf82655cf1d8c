"""What the OpenAPI document says that Litestar does not derive from the routes by itself.

Errors. What every operation can answer besides its own responses.

Litestar documents the responses a route declares; the errors come from elsewhere (the auth
guard, parameter and body decoding, the services behind the gateway, `problems.py`), the same
for every route of a kind. `declare_responses` adds them to the document in one place, each an
RFC 9457 problem (`application/problem+json`), by what the operation has:

- every operation: 500 (`on_unexpected`);
- one that needs a token: 401, 403 and 429 (the guard), 503 and 504 (NATS or a service away
  or too slow);
- one with parameters or a body: 422 (`invalid`, each bad field named in `errors`; a missing
  body is `$`);
- one with a body: 400 (the body is not JSON) and 413 (too large);
- one with a path parameter: 404 (nothing by that name);
- one that takes an `Idempotency-Key`: 409 (the key was used with another body, or the change
  contradicts the current state), and one that creates something (201): 409 (it is there
  already).

A route declares what else it can answer itself (`problem(...)` in its `responses`), and a
server-sent events route its events' data (`media_type="text/event-stream"`), which this turns
into the schema of one event.

Bodies. One a route may go without (`JSONBody[X | None] = None`) is not required.

Rules. A Struct that refuses unknown fields says so (`additionalProperties: false`), and
`RULES` adds what the code checks beyond the Structs' types where JSON Schema can say it; what
it cannot say is in the operation's description.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType
from litestar.params import HeaderParameter, ParameterKwarg
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from cortex.contracts.gateway import Problem
from cortex.contracts.messaging import TOPIC_PATTERN
from cortex.gateway.problems import PROBLEM_JSON
from cortex.kernel.messages import USER_HEADER_NAME

EVENT_STREAM = "text/event-stream"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds after which the token may make a request again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

WHY: dict[int, str] = {
    400: "The body is not JSON (`code` `invalid`)",
    401: "No bearer token, or one that is not valid (`code` `unauthorized`)",
    403: "The token's role does not allow this (`code` `forbidden`)",
    404: "Nothing of that id or name is known (`code` `not_found`)",
    409: "The change contradicts the current state, or its `Idempotency-Key` was used with "
    "another body (`code` `conflict`)",
    412: "`If-Match` names a version that is no longer current (`code` `precondition_failed`; "
    "`details.current_version`)",
    413: "The body is too large (`code` `too_large`)",
    429: "The token made more requests than `CORTEX_RATE_LIMIT` allows (`code` `rate_limited`); "
    "`Retry-After` says in how many seconds to retry",
    422: "A parameter or the body breaks a rule, or the body is missing; `errors` names each "
    "field (`$` for the body) (`code` `invalid`)",
    500: "The gateway failed; its log has the details (`code` `internal`)",
    503: "NATS or the service that answers this is not available; retrying may help "
    "(`code` `unavailable`)",
    504: "The service that answers this did not answer in time (`code` `timeout`)",
}
"""Each error status the gateway gives, and why."""

_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "`Bearer`",
        "schema": {"type": "string"},
        "required": True,
    }
}


def problem(status: int, description: str | None = None) -> ResponseSpec:
    """For a route's `responses`: an error it gives besides those every route of its kind
    gives (`errors_of`)."""
    return ResponseSpec(
        Problem,
        media_type=PROBLEM_JSON,
        description=description or WHY[status],
        generate_examples=False,
    )


def optional_header(name: str, pattern: str, description: str) -> ParameterKwarg:
    """An optional request header whose values match `pattern`, for `Annotated[str | None,
    ...]`. The route checks it itself, naming the header in its problem; the document states
    the rule so that a client knows it. A header is text or absent, never null."""
    return HeaderParameter(
        name=name,
        required=False,
        schema_extra={"one_of": None, "type": OpenAPIType.STRING, "pattern": pattern},
        description=description,
    )


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of a problem document."""
    response: dict[str, Any] = {
        "description": description or WHY[status],
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
    }
    if status == 401:
        response["headers"] = _AUTHENTICATE
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


def errors_of(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it has (see the module)."""
    statuses = {500}
    if operation.get("security") != [{}]:  # `[{}]`: a public route, no token needed
        statuses |= {401, 403, 429, 503, 504}
    parameters = operation.get("parameters") or []
    body = "requestBody" in operation
    if parameters or body:
        statuses.add(422)
    if body:
        statuses |= {400, 413}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters):
        statuses.add(409)
    if "201" in operation.get("responses", {}):  # what it creates may be there already
        statuses.add(409)
    return statuses


def event_schema(data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event whose `data` is JSON of the schema `data`."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


_BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""What `base64.b64decode(..., validate=True)` takes: padded, no line breaks."""

RULES: dict[str, dict[str, Any]] = {
    # The messaging service's `subscription_domain`.
    "TopicBody": {"properties": {"topic": {"pattern": TOPIC_PATTERN}}},
    # `kernel.messages.message_headers` and `payload_from_api`.
    "SendMessage": {
        "properties": {"headers": {"propertyNames": {"pattern": USER_HEADER_NAME}}},
        "allOf": [
            {
                "if": {
                    "properties": {"content_type": {"const": "text/plain"}},
                    "required": ["content_type"],
                },
                "then": {"properties": {"payload": {"type": "string"}}},
            },
            {
                "if": {
                    "properties": {"content_type": {"const": "application/octet-stream"}},
                    "required": ["content_type"],
                },
                "then": {
                    "properties": {
                        "payload": {
                            "type": "string",
                            "contentEncoding": "base64",
                            "pattern": _BASE64,
                        }
                    }
                },
            },
        ],
    },
}
"""Rules the code checks beyond a Struct's types, by component (`lifecycle.validation`, ...),
merged into its schema."""


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _closed_structs() -> dict[str, list[type[msgspec.Struct]]]:
    """By name, the Structs that refuse unknown fields."""
    found: dict[str, list[type[msgspec.Struct]]] = {}
    todo: list[type[msgspec.Struct]] = [msgspec.Struct]
    seen: set[type[msgspec.Struct]] = set()
    while todo:
        cls = todo.pop()
        todo.extend(c for c in cls.__subclasses__() if c not in seen)
        seen.add(cls)
        if cls is not msgspec.Struct and cls.__struct_config__.forbid_unknown_fields:
            found.setdefault(cls.__name__, []).append(cls)
    return found


def _declare_rules(schemas: dict[str, Any]) -> None:
    closed = _closed_structs()
    for name, schema in schemas.items():
        fields = set(schema.get("properties", {}))
        struct = next(
            (c for c in closed.get(name, []) if set(c.__struct_encode_fields__) == fields), None
        )
        if schema.get("type") == "object" and struct is not None:
            schema["additionalProperties"] = False
            # Litestar leaves out the constraints on a mapping's keys (`Labels`); msgspec's own
            # schema of such a field has them.
            _, own = msgspec.json.schema_components(
                [struct], ref_template="#/components/schemas/{name}"
            )
            for field, field_schema in own[struct.__name__]["properties"].items():
                if "propertyNames" in msgspec.json.encode(field_schema).decode():
                    schema["properties"][field] = field_schema
        _merge(schema, RULES.get(name, {}))


def _optional_body(operation: dict[str, Any]) -> None:
    """Litestar calls every body required; one that may be null (`JSONBody[X | None] = None`)
    may be left out too: the route reads no body as null."""
    body = operation.get("requestBody")
    if body is None:
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        if {"type": "null"} in schema.get("oneOf", []) + schema.get("anyOf", []):
            body["required"] = False


def declare_responses(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every operation's error responses and the rules of its schemas, in
    place; see the module."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _, components = msgspec.json.schema_components(
        [Problem], ref_template="#/components/schemas/{name}"
    )
    # Ours rather than Litestar's: Litestar adds made-up examples to a response's schema.
    schemas.update(components)
    _declare_rules(schemas)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            _optional_body(operation)
            responses = operation.setdefault("responses", {})
            statuses = errors_of(operation)
            if 400 not in statuses and PROBLEM_JSON not in responses.get("400", {}).get(
                "content", {}
            ):
                # Litestar documents a 400 wherever there are parameters; without a body the
                # gateway answers a bad parameter with 422 (`problems.on_validation_error`).
                responses.pop("400", None)
            for status in sorted(statuses):
                existing = responses.get(str(status), {}).get("content", {})
                # Litestar's own 400 (its ValidationException body) is never what we send.
                if PROBLEM_JSON not in existing:
                    responses[str(status)] = problem_response(status)
            for response in responses.values():
                stream = response.get("content", {}).get(EVENT_STREAM)
                if stream is not None and "schema" in stream:
                    stream["schema"] = event_schema(stream["schema"])
    return document


_TYPED_PARAMETER = re.compile(r"\{(\w+):[^}]+\}")


async def allow_every_method(message: Message, scope: Scope) -> None:
    """`before_send`: an `OPTIONS` answer's `Allow` lists every method of its path.

    Litestar makes the `OPTIONS` handler of a path when its first route registers and keeps it
    when more routes of the same path (another method) join, so that its `Allow` names the
    first route's methods only (`GET, OPTIONS` where `DELETE` is there too)."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    template = scope.get("path_template")
    methods = {
        method
        for route in scope["litestar_app"].routes
        if isinstance(route, HTTPRoute) and _TYPED_PARAMETER.sub(r"{\1}", route.path) == template
        for method in route.methods
    }
    if methods:
        MutableScopeHeaders.from_message(message)["allow"] = ", ".join(sorted(methods))
