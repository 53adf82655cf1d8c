"""The closed list of error codes and the error body every reply and problem document carries."""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class ErrorCode(enum.StrEnum):
    """Why a request failed. Closed: clients may switch on it exhaustively."""

    INVALID = "invalid"
    """The request is malformed or violates a rule; `details.violations` names the fields."""
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    """The request contradicts the current state (name taken, illegal transition, lost race)."""
    PRECONDITION_FAILED = "precondition_failed"
    """An expected version (HTTP `If-Match`) is stale; `details.current_version` is current."""
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    """The token made more requests than its limit allows; `Retry-After` says when to retry."""
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    """A dependency (a service, NATS, the event store) did not answer; retrying may help."""
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
"""How the gateway maps an error code to an HTTP status."""


class Violation(msgspec.Struct, frozen=True):
    """One rule a request broke: `field` is a JSON path such as `$.config.replicas`."""

    field: str
    message: str


class Error(msgspec.Struct, frozen=True, kw_only=True):
    """The error body of a failed reply."""

    code: ErrorCode
    message: str
    details: dict[str, Any] = {}
    """Machine-readable extras: `violations` (a list of Violation), `current_version`, ..."""
