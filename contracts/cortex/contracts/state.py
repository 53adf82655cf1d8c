"""Agent state: one versioned JSON document per agent, kept by the registry service.

Writes: conditional (`expected_version`: a mismatch is `precondition_failed` carrying the
current version), unconditional (last writer wins by `(written_at, writer)`, so writers that
race converge on the same document whatever order their writes arrive in), and merge-patches
(RFC 7396). Every applied change bumps `version`, is an event, and is announced on core NATS at
`cortex.state.<agent_id>` (the StateView) for watchers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

STATE_LIMIT = 512 * 1024
"""Largest state document, JSON-encoded, in bytes."""
HISTORY = 20
"""Earlier versions kept per agent."""


class StateView(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    version: int
    """0: nothing was ever written."""
    value: Any = None
    """The document (any JSON value; merge-patches need an object)."""
    written_at: int = 0
    """Unix time in nanoseconds of the write that produced this version, as its writer said."""
    writer: str = ""
    updated_at: datetime | None = None


class GetState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`state.get`."""

    agent_id: str


class PutState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`state.put`: replace the document."""

    agent_id: str
    value: Any
    writer: str
    expected_version: int | None = None
    """Write only if the document is at this version (0: never written)."""
    written_at: int | None = None
    """The writer's clock (Unix ns) for last-writer-wins; the registry's clock if absent."""


class PatchState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`state.patch`: RFC 7396 merge-patch of the document (null removes a key)."""

    agent_id: str
    patch: dict[str, Any]
    writer: str
    expected_version: int | None = None
    written_at: int | None = None


class StateWrite(msgspec.Struct, frozen=True, kw_only=True):
    state: StateView
    """The document after the write."""
    applied: bool
    """False when an unconditional write lost to a newer one (last writer wins)."""


class StateHistory(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    versions: list[StateView]
    """Newest first: the current document, then up to `HISTORY` earlier versions."""


# --- events (stream `state-<agent_id>`) ----------------------------------------------------


class StateWritten(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "state.written"
    agent_id: str
    value: Any
    version: int
    written_at: int
    writer: str


class StatePatched(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "state.patched"
    agent_id: str
    patch: dict[str, Any]
    version: int
    written_at: int
    writer: str


class StateDeleted(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "state.deleted"
    agent_id: str
    reason: str
