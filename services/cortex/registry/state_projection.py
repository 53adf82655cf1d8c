"""The read model of agent state: per agent, the current document and up to `HISTORY` earlier
versions, built only from the `state-<agent_id>` streams.

It also keeps each stream's version (which a deletion does not reset, unlike the document's),
so that a write is decided on the read model and appended at that version without reading the
stream back.
"""

from __future__ import annotations

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.state import HISTORY, StateView
from cortex.kernel.projection import StructProjection
from cortex.registry.state_domain import Doc, agent_of, codec, evolve, view


class AgentStates(msgspec.Struct):
    stream_version: int = 0
    versions: list[StateView] = []
    """Newest first: the current document, then up to `HISTORY` earlier ones; empty at
    version 0."""
    deleted_written_at: int = 0
    deleted_writer: str = ""
    """The stamp of the last write before the document was deleted (see `state_domain`)."""

    def doc(self) -> Doc:
        if not self.versions:
            return Doc(written_at=self.deleted_written_at, writer=self.deleted_writer)
        current = self.versions[0]
        return Doc(
            version=current.version,
            value=current.value,
            written_at=current.written_at,
            writer=current.writer,
        )


class States(msgspec.Struct):
    agents: dict[str, AgentStates] = {}


class StateProjection(StructProjection[States]):
    name = "registry-state"
    version = 1
    model_type = States

    def apply(self, event: EventEnvelope) -> None:
        agent_id = agent_of(event.stream_id)
        if agent_id is None:
            return
        record = self.model.agents.get(agent_id)
        if record is None:
            record = self.model.agents[agent_id] = AgentStates()
        record.stream_version = event.version
        data = codec.decode(event)
        if data is None:
            return
        after = evolve(record.doc(), data)
        if after.version == 0:
            record.versions = []
            record.deleted_written_at, record.deleted_writer = after.stamp
            return
        record.versions.insert(0, view(agent_id, after, event.occurred_at))
        del record.versions[HISTORY + 1 :]

    # --- reading ---------------------------------------------------------------------------

    def current(self, agent_id: str) -> StateView:
        record = self.model.agents.get(agent_id)
        if record is None or not record.versions:
            return StateView(agent_id=agent_id, version=0)
        return record.versions[0]

    def history(self, agent_id: str) -> list[StateView]:
        record = self.model.agents.get(agent_id)
        return list(record.versions) if record is not None else []

    def at(self, agent_id: str, version: int) -> StateView | None:
        """The version `version` of the document, while it is in the history."""
        for found in self.history(agent_id):
            if found.version == version:
                return found
        return None

    def doc(self, agent_id: str) -> tuple[Doc, int]:
        """The document as deciding needs it, and the version of its stream."""
        record = self.model.agents.get(agent_id)
        if record is None:
            return Doc(), 0
        return record.doc(), record.stream_version
