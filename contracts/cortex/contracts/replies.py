"""The reply envelope of every NATS command and query: a result or an error, never both."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from cortex.contracts.errors import Error

T = TypeVar("T")


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    """`{"result": ...}` on success, `{"error": {code, message, details}}` on failure.

    The result's type is the one the command or query promises (`Ok[T]` reads it typed).
    """

    result: Any = None
    error: Error | None = None


class Ok(msgspec.Struct, Generic[T], frozen=True):
    """A successful reply, read as the type the caller expects."""

    result: T
