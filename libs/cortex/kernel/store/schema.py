"""Versions of what an event store holds beyond the events themselves: tables, collections,
indexes. Each adapter numbers its own, applies the ones a store lacks when it opens it (under
the store's own lock, so replicas starting together apply each once), records the version in
the store, and refuses a store newer than it understands: a rollback must not write into a
shape it does not know. `cortex admin migrate` applies them ahead of a rollout.
"""

from __future__ import annotations

from cortex.kernel.errors import Unavailable


class StoreTooNew(Unavailable):
    """The store was set up by a newer CodeValdCortex than this one."""

    def __init__(self, location: str, found: int, known: int) -> None:
        super().__init__(
            f"event store {location} is at schema version {found}, and this version of "
            f"CodeValdCortex knows versions up to {known}: run the newer version (or restore "
            "a backup taken before the upgrade)",
            details={"store": location, "schema_version": found, "known": known},
        )
