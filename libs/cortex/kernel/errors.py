"""Errors with a contract code: raised by domain and adapters, carried on the wire as `Error`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec

from cortex.contracts.errors import Error, ErrorCode, Violation
from cortex.contracts.names import PATTERN_MEANINGS


class CortexError(Exception):
    """An error a caller is meant to see. Anything else becomes `internal` on the wire."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_contract(self) -> Error:
        return Error(code=self.code, message=self.message, details=self.details)


class Invalid(CortexError):
    code = ErrorCode.INVALID

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[Violation] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if violations:
            merged["violations"] = [msgspec.to_builtins(v) for v in violations]
        super().__init__(message, details=merged)
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        """One bad field: the message names it, and `details.violations` carries its path."""
        return cls(f"{field}: {message}", violations=[Violation(field=field, message=message)])


class NotFound(CortexError):
    code = ErrorCode.NOT_FOUND


class Conflict(CortexError):
    code = ErrorCode.CONFLICT


class PreconditionFailed(CortexError):
    code = ErrorCode.PRECONDITION_FAILED


class Unauthorized(CortexError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(CortexError):
    code = ErrorCode.FORBIDDEN


class TooLarge(CortexError):
    code = ErrorCode.TOO_LARGE


class RateLimited(CortexError):
    """`details.retry_after`: seconds until the request would be allowed."""

    code = ErrorCode.RATE_LIMITED


class Timeout(CortexError):
    code = ErrorCode.TIMEOUT


class Unavailable(CortexError):
    code = ErrorCode.UNAVAILABLE


class Internal(CortexError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[CortexError]] = {
    cls.code: cls
    for cls in (
        Invalid,
        NotFound,
        Conflict,
        PreconditionFailed,
        Unauthorized,
        Forbidden,
        TooLarge,
        RateLimited,
        Timeout,
        Unavailable,
        Internal,
    )
}


def from_contract(error: Error) -> CortexError:
    """Raise-able form of an error received from another process, code and details intact."""
    exc = _BY_CODE.get(error.code, Internal)(error.message, details=dict(error.details))
    if isinstance(exc, Invalid):
        exc.violations = [
            msgspec.convert(v, Violation) for v in error.details.get("violations", [])
        ]
    return exc


_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_NO_MATCH = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$")


def readable(message: str) -> str:
    """msgspec's message for a bad value, in words where it quotes one of our patterns: a user
    who typed a name reads `must be a DNS label: ...`, not the regular expression."""
    found = _NO_MATCH.match(message)
    meaning = PATTERN_MEANINGS.get(found["pattern"]) if found else None
    return f"must be {meaning}" if meaning else message


def from_validation(exc: msgspec.ValidationError | msgspec.DecodeError, root: str = "$") -> Invalid:
    """Turn msgspec's `Expected `int`, got `str` - at `$.replicas`` into a field violation.

    A missing field is reported at its own path (`$.name`, "required field is missing") rather
    than at its parent's, so that a user sees which field to add.
    """
    text = str(exc)
    message, sep, path = text.rpartition(" - at `")
    field = path.rstrip("`") if sep else "$"
    if not sep:
        message = text
    missing = _MISSING.match(message)
    if missing:
        field = f"{field}.{missing['name']}"
        message = "required field is missing"
    message = readable(message)
    if root != "$":
        field = root + field[1:]
    return Invalid.field(field, message)
