"""Every HTTP error as RFC 9457 `application/problem+json`, with the platform's error code."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from cortex.contracts.errors import HTTP_STATUS, ErrorCode, Violation
from cortex.contracts.gateway import Problem
from cortex.kernel.errors import CortexError, readable
from cortex.kernel.logging import get_logger

log = get_logger()

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://codevald.dev/problems/"

_CODE_OF_STATUS = {
    400: ErrorCode.INVALID,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID,
    409: ErrorCode.CONFLICT,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.TOO_LARGE,
    422: ErrorCode.INVALID,
    503: ErrorCode.UNAVAILABLE,
    504: ErrorCode.TIMEOUT,
}


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    code: ErrorCode,
    detail: str,
    *,
    errors: list[Violation] | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = Problem(
        type=PROBLEM_BASE + code.value,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code.value,
        instance=request.url.path,
        errors=errors or [],
        details=details or {},
    )
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def on_cortex_error(request: Request[Any, Any, Any], exc: CortexError) -> Response[bytes]:
    details = dict(exc.details)
    violations = [msgspec.convert(v, Violation) for v in details.pop("violations", [])]
    status = HTTP_STATUS[exc.code]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": str(details.get("retry_after", 1))}
    return problem_response(
        request, status, exc.code, exc.message, errors=violations, details=details, headers=headers
    )


def on_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[bytes]:
    items = exc.extra if isinstance(exc.extra, list) else []
    if not items:  # the body is not JSON at all
        return problem_response(
            request,
            400,
            ErrorCode.INVALID,
            str(exc.detail),
            errors=[Violation(field="$", message=str(exc.detail))],
        )
    violations = [
        _violation(
            str(i.get("key") or ""),
            str(i.get("message", "")),
            # Litestar gives the source as its enum for parameters and as text for the body.
            str(getattr(i.get("source"), "value", i.get("source")) or "body"),
        )
        for i in items
    ]
    detail = "; ".join(f"{v.field}: {v.message}" for v in violations)
    return problem_response(request, 422, ErrorCode.INVALID, detail, errors=violations)


_NAMED_FIELD = re.compile(r"^Object (missing required|contains unknown) field `(?P<name>[^`]+)`$")


def _violation(key: str, message: str, source: str) -> Violation:
    """Litestar reports `key: data` for the body itself and `a.b` below it; users get JSON
    paths (`$.a.b`), and a missing or unknown field is named at its own path."""
    if source == "body" and key == "data" and message == "'data'":
        # Litestar's words for a request without the body its route needs.
        return Violation(field="$", message="the request has no body; this needs a JSON body")
    message = readable(message)
    if source == "header":
        # The parameter's Python name stands for the header a client sends.
        key = "-".join(part.capitalize() for part in key.split("_"))
    if source != "body":
        return Violation(field=f"{source}.{key}", message=message)
    field = "$" if key in ("", "data") else f"$.{key}"
    named = _NAMED_FIELD.match(message)
    if named:
        field = f"{field}.{named['name']}"
        message = "required field is missing" if "missing" in message else "unknown field"
    return Violation(field=field, message=message)


def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = _CODE_OF_STATUS.get(status, ErrorCode.INTERNAL)
    # Litestar's own headers go with it: a 405 lists the methods the path has (`Allow`).
    headers = dict(exc.headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem_response(request, status, code, str(exc.detail), headers=headers or None)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error", path=request.url.path)
    return problem_response(
        request,
        500,
        ErrorCode.INTERNAL,
        "the gateway failed to handle the request; its log has the details",
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    CortexError: on_cortex_error,
    ValidationException: on_validation_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
