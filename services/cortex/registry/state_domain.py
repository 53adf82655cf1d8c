"""An agent's state document as pure functions: stream `state-<agent_id>`, stream type `state`.

`evolve` folds an event into a `Doc`; the deciders `put`, `patch` and `delete` return the
events a command calls for (none: not applied) or raise the error that refuses it.

Every version carries a stamp, `(written_at, writer)`, compared as a tuple. An unconditional
put applies only if its stamp is greater than the current one, so writers that race converge on
the write with the greatest stamp whatever order the writes arrive in (last writer wins, by the
writers' clocks, with the writer id breaking ties). A conditional put or a patch applies because
the version matched (or, for a patch without one, always), not because of its stamp; it is
given `max(its stamp, (current written_at + 1, its writer))` so that stamps only grow and an
older unconditional write still cannot overwrite it afterwards.

A deletion (the agent was purged) returns the document to version 0 but keeps the last stamp,
so that a late unconditional write from before the purge does not bring the state back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cortex.contracts.state import (
    STATE_LIMIT,
    PatchState,
    PutState,
    StateDeleted,
    StatePatched,
    StateView,
    StateWritten,
)
from cortex.kernel.errors import Invalid, PreconditionFailed, TooLarge
from cortex.kernel.events import EventCodec
from cortex.registry.merge_patch import merge_patch

STREAM_TYPE = "state"
PURGED = "agent purged"

StateEvent = StateWritten | StatePatched | StateDeleted

codec = EventCodec(StateWritten, StatePatched, StateDeleted)

Stamp = tuple[int, str]


class Doc(msgspec.Struct, frozen=True, kw_only=True):
    """What deciding needs: the document, its version and the stamp of the last write."""

    version: int = 0
    value: Any = None
    written_at: int = 0
    writer: str = ""

    @property
    def stamp(self) -> Stamp:
        return (self.written_at, self.writer)


def stream_id(agent_id: str) -> str:
    return f"state-{agent_id}"


def agent_of(stream: str) -> str | None:
    return stream[6:] if stream.startswith("state-") else None


def view(agent_id: str, doc: Doc, updated_at: datetime | None = None) -> StateView:
    """The document as the contract shows it; version 0 shows nothing, whatever stamp it
    keeps."""
    if doc.version == 0:
        return StateView(agent_id=agent_id, version=0)
    return StateView(
        agent_id=agent_id,
        version=doc.version,
        value=doc.value,
        written_at=doc.written_at,
        writer=doc.writer,
        updated_at=updated_at,
    )


# --- evolve ----------------------------------------------------------------------------------


def evolve(doc: Doc, event: object) -> Doc:
    if isinstance(event, StateWritten):
        return Doc(
            version=event.version,
            value=event.value,
            written_at=event.written_at,
            writer=event.writer,
        )
    if isinstance(event, StatePatched):
        return Doc(
            version=event.version,
            value=merge_patch(doc.value, event.patch),
            written_at=event.written_at,
            writer=event.writer,
        )
    if isinstance(event, StateDeleted):
        return Doc(written_at=doc.written_at, writer=doc.writer)
    return doc


# --- deciders --------------------------------------------------------------------------------


def put(doc: Doc, cmd: PutState, now: int) -> list[StateEvent]:
    """`now`: the registry's clock (Unix ns), the stamp of a write that brought none."""
    written_at = _stamp_time(cmd.written_at, now)
    _check_writer(cmd.writer)
    check_document(cmd.value)
    if cmd.expected_version is None:
        if (written_at, cmd.writer) <= doc.stamp:
            return []
        stamp = (written_at, cmd.writer)
    else:
        _check_version(doc, cmd.agent_id, cmd.expected_version)
        stamp = _advance(doc, written_at, cmd.writer)
    return [
        StateWritten(
            agent_id=cmd.agent_id,
            value=cmd.value,
            version=doc.version + 1,
            written_at=stamp[0],
            writer=stamp[1],
        )
    ]


def patch(doc: Doc, cmd: PatchState, now: int) -> list[StateEvent]:
    written_at = _stamp_time(cmd.written_at, now)
    _check_writer(cmd.writer)
    if cmd.expected_version is not None:
        _check_version(doc, cmd.agent_id, cmd.expected_version)
    check_document(merge_patch(doc.value, cmd.patch))
    stamp = _advance(doc, written_at, cmd.writer)
    return [
        StatePatched(
            agent_id=cmd.agent_id,
            patch=cmd.patch,
            version=doc.version + 1,
            written_at=stamp[0],
            writer=stamp[1],
        )
    ]


def delete(doc: Doc, agent_id: str, reason: str) -> list[StateEvent]:
    """Nothing to delete at version 0 (never written, or deleted already)."""
    if doc.version == 0:
        return []
    return [StateDeleted(agent_id=agent_id, reason=reason)]


def check_document(value: Any) -> None:
    """Refuse a document over the size limit, or one the read model could not snapshot."""
    size = len(msgspec.json.encode(value))
    if size > STATE_LIMIT:
        raise TooLarge(
            f"the state document is {size} bytes JSON-encoded; the limit is {STATE_LIMIT} bytes",
            details={"size": size, "limit": STATE_LIMIT},
        )
    # JSON allows any integer, but the read model's MessagePack snapshots stop at 64 bits (and
    # most JSON readers well before that).
    try:
        msgspec.msgpack.encode(value)
    except OverflowError:
        raise Invalid.field("$.value", "integers must lie within [-2**63, 2**64 - 1]") from None


def _stamp_time(written_at: int | None, now: int) -> int:
    if written_at is None:
        return now
    if written_at < 0:
        raise Invalid.field("$.written_at", "must be a Unix time in nanoseconds, not negative")
    return written_at


def _check_writer(writer: str) -> None:
    if not writer:
        raise Invalid.field("$.writer", "must not be empty: it names who wrote each version")


def _check_version(doc: Doc, agent_id: str, expected: int) -> None:
    if expected != doc.version:
        raise PreconditionFailed(
            f"the state of agent {agent_id} is at version {doc.version}, not {expected}",
            details={"current_version": doc.version, "expected_version": expected},
        )


def _advance(doc: Doc, written_at: int, writer: str) -> Stamp:
    return max((written_at, writer), (doc.written_at + 1, writer))
