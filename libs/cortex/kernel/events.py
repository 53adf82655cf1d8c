"""Domain events as typed Structs: encoding them for the store, decoding what comes back.

Every event Struct names its type in a `TYPE` class variable (`agent.scaled`); a codec knows the
types of one service and turns envelopes back into Structs. Unknown types decode to None, so a
read model simply skips events it was not written for.

**Evolution.** An event is stored with the `schema_version` its type had when it was written.
When a type's Struct changes shape, the codec is given an upcaster from the old version to the
next one: a function on the event's decoded JSON. Decoding runs the upcasters from the stored
version up to the current one, then converts to the Struct; new events are written with the
current version, which is one more than the type's number of upcasters. An event that still
does not decode raises `UndecodableEvent`, which readers quarantine (`Quarantine`): logged,
counted, listed, skipped; never a reason to stop.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from cortex.contracts.events import EventEnvelope, QuarantinedEvent
from cortex.kernel.bus.relay import event_headers
from cortex.kernel.errors import TooLarge
from cortex.kernel.ids import utcnow
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import SERVICES, counter
from cortex.kernel.store import NewEvent

log = get_logger()

QUARANTINED = counter(
    "cortex_events_quarantined_total",
    "Stored events skipped because they cannot be decoded, even after upcasting",
    ["service", "type"],
    exported_by=SERVICES,
)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""The JSON of an event at one schema version to the JSON of the next version."""


_WIDEST = 2**63 - 1
"""An event's version and position are not known before it is appended: count them at their
widest."""


def check_publishable(stream_id: str, events: Sequence[NewEvent], max_payload: int) -> None:
    """Refuse an event larger than the bus carries (`max_payload`, headers included), naming
    the field that makes it large. Once stored it could never be published: the outbox relay
    would fail on it again and again and hold up every event after it."""
    for event in events:
        envelope = EventEnvelope(
            event_id=event.event_id,
            stream_id=stream_id,
            stream_type=event.stream_type,
            version=_WIDEST,
            position=_WIDEST,
            type=event.type,
            data=msgspec.Raw(event.data),
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            actor=event.actor,
            schema_version=event.schema_version,
        )
        # As the relay publishes it; NATS counts the header block (`NATS/1.0`, a line per
        # header, a blank line) against max_payload with the body.
        headers = b"NATS/1.0\r\n\r\n" + b"".join(
            f"{name}: {value}\r\n".encode() for name, value in event_headers(envelope).items()
        )
        size = len(headers) + len(msgspec.json.encode(envelope))
        if size > max_payload:
            field, field_size = _largest_field(event.data)
            raise TooLarge(
                f"event {event.type} would be {_size(size)}, over the {_size(max_payload)} "
                f"the bus carries: {field} is {_size(field_size)}",
                details={"field": field, "event_type": event.type, "size": size},
            )


def _largest_field(data: bytes) -> tuple[str, int]:
    """The JSON path of what makes an event large: from the top, into its largest member for
    as long as that member is most of it."""
    path, value, size = "$", msgspec.json.decode(data), len(data)
    while isinstance(value, dict | list) and value:
        members = value.items() if isinstance(value, dict) else enumerate(value)
        name, member, member_size = max(
            ((k, v, len(msgspec.json.encode(v))) for k, v in members), key=lambda m: m[2]
        )
        if member_size * 2 <= size:
            break
        path += f".{name}" if isinstance(value, dict) else f"[{name}]"
        value, size = member, member_size
    return path, size


def _size(n: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


class UndecodableEvent(ValueError):
    """A stored event of a known type that does not decode into its Struct."""

    def __init__(self, envelope: EventEnvelope, reason: str) -> None:
        super().__init__(
            f"event {envelope.event_id} ({envelope.type} version {envelope.schema_version}, "
            f"position {envelope.position}) cannot be decoded: {reason}"
        )
        self.envelope = envelope
        self.reason = reason


class EventCodec:
    def __init__(
        self,
        *types: type[msgspec.Struct],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        """`upcasters[(type, n)]` turns version n of `type` into version n + 1; every type's
        upcasters start at version 1 and leave no gap."""
        self._types: dict[str, type[msgspec.Struct]] = {}
        for cls in types:
            kind = getattr(cls, "TYPE", None)
            if not isinstance(kind, str):
                raise TypeError(f"{cls.__name__} has no TYPE")
            self._types[kind] = cls
        self._decoders = {k: msgspec.json.Decoder(v) for k, v in self._types.items()}
        self._upcasters = dict(upcasters or {})
        self._current = dict.fromkeys(self._types, 1)
        for kind, version in sorted(self._upcasters):
            if kind not in self._types:
                raise TypeError(f"an upcaster of {kind}, which is not an event of this codec")
            if version != self._current[kind]:
                raise TypeError(
                    f"the upcasters of {kind} must go 1, 2, 3...: "
                    f"version {self._current[kind]} has none, {version} has one"
                )
            self._current[kind] = version + 1

    def schema_version(self, kind: str) -> int:
        """The version new events of `kind` are written with."""
        return self._current[kind]

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
            schema_version=self._current[kind],
        )

    def decode(self, envelope: EventEnvelope) -> Any:
        """The event's Struct; None for a type this codec does not know. Raises
        `UndecodableEvent` for one it knows but cannot read."""
        decoder = self._decoders.get(envelope.type)
        if decoder is None:
            return None
        stored, current = envelope.schema_version, self._current[envelope.type]
        data: bytes = envelope.data
        if not 1 <= stored <= current:
            # Newer: written by a later release of the service (a rollback, or a rolling update).
            raise UndecodableEvent(
                envelope, f"this service reads versions 1 to {current} of {envelope.type}"
            )
        if stored < current:
            data = self._upcast(envelope, stored, current)
        try:
            return decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise UndecodableEvent(envelope, str(exc)) from exc

    def _upcast(self, envelope: EventEnvelope, stored: int, current: int) -> bytes:
        try:
            body = msgspec.json.decode(envelope.data)
        except msgspec.DecodeError as exc:
            raise UndecodableEvent(envelope, str(exc)) from exc
        for version in range(stored, current):
            try:
                body = self._upcasters[(envelope.type, version)](body)
            except Exception as exc:  # an upcaster is the service's code: any failure counts
                raise UndecodableEvent(
                    envelope, f"upcasting from version {version}: {exc!r}"
                ) from exc
        # Through JSON again rather than msgspec.convert: the same rules as a current event.
        return msgspec.json.encode(body)


class Quarantine:
    """Events a service skipped because it cannot decode them: each is logged with its id,
    type and position, counted in `cortex_events_quarantined_total` and kept, the latest
    `keep` of them, for `/api/v1/status`. Once per event, however many readers meet it."""

    def __init__(self, service: str, *, keep: int = 20) -> None:
        self._service = service
        self._seen: set[str] = set()
        self._latest: collections.deque[QuarantinedEvent] = collections.deque(maxlen=keep)
        self._listeners: list[Callable[[], None]] = []

    @property
    def events(self) -> list[QuarantinedEvent]:
        return list(self._latest)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def decoded(
        self, codec: EventCodec, envelopes: Iterable[EventEnvelope], reader: str
    ) -> Iterator[tuple[EventEnvelope, Any]]:
        """Each envelope with its event: None for a type `codec` does not know, and for one it
        cannot decode, which is quarantined here. For every reader that folds a stream."""
        for envelope in envelopes:
            try:
                event = codec.decode(envelope)
            except UndecodableEvent as exc:
                self.add(exc, reader)
                event = None
            yield envelope, event

    def add(self, error: UndecodableEvent, reader: str) -> None:
        """`reader`: the projection or aggregate that met the event."""
        envelope = error.envelope
        if envelope.event_id in self._seen:
            return
        self._seen.add(envelope.event_id)
        QUARANTINED.labels(self._service, envelope.type).inc()
        log.error(
            "event quarantined: it cannot be decoded and is skipped",
            service=self._service,
            event_id=envelope.event_id,
            type=envelope.type,
            schema_version=envelope.schema_version,
            stream_id=envelope.stream_id,
            position=envelope.position,
            reader=reader,
            error=error.reason,
        )
        self._latest.append(
            QuarantinedEvent(
                event_id=envelope.event_id,
                stream_id=envelope.stream_id,
                type=envelope.type,
                schema_version=envelope.schema_version,
                position=envelope.position,
                reader=reader,
                error=error.reason[:500],
                at=utcnow(),
            )
        )
        for listener in self._listeners:
            listener()
