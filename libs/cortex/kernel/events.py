"""Domain events as typed Structs: encoding them for the store, decoding what comes back.

Every event Struct names its type in a `TYPE` class variable (`agent.scaled`); a codec knows the
types of one service and turns envelopes back into Structs. Unknown types decode to None, so a
read model simply skips events it was not written for.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.store import NewEvent


class EventCodec:
    def __init__(self, *types: type[msgspec.Struct]) -> None:
        self._types: dict[str, type[msgspec.Struct]] = {}
        for cls in types:
            kind = getattr(cls, "TYPE", None)
            if not isinstance(kind, str):
                raise TypeError(f"{cls.__name__} has no TYPE")
            self._types[kind] = cls
        self._decoders = {k: msgspec.json.Decoder(v) for k, v in self._types.items()}

    def new(
        self,
        event: msgspec.Struct,
        *,
        stream_type: str,
        correlation_id: str | None = None,
        actor: str | None = None,
    ) -> NewEvent:
        kind: str = type(event).TYPE  # type: ignore[attr-defined]
        if kind not in self._types:
            raise TypeError(f"{kind} is not an event of this codec")
        return NewEvent(
            type=kind,
            stream_type=stream_type,
            data=msgspec.json.encode(event),
            correlation_id=correlation_id,
            actor=actor,
        )

    def decode(self, envelope: EventEnvelope) -> Any:
        decoder = self._decoders.get(envelope.type)
        return decoder.decode(envelope.data) if decoder else None
