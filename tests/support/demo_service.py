"""A small service built on the runtime, as a real service would be, for the runtime's tests."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.errors import NotFound
from cortex.kernel.events import EventCodec
from cortex.kernel.projection import StructProjection
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings


class Echo(msgspec.Struct):
    text: str
    times: int = 1


class Echoed(msgspec.Struct):
    text: str
    replica: str


class AddNote(msgspec.Struct):
    note: str
    pause: float = 0.0
    """Seconds the handler waits before it appends: long enough, and two replicas given the
    same command are both inside it at once."""
    linger: float = 0.0
    """Seconds it waits after appending, before it answers."""


class NoteAdded(msgspec.Struct, frozen=True):
    TYPE: ClassVar[str] = "note.added"
    note: str


CODEC = EventCodec(NoteAdded)


class Notes(msgspec.Struct):
    notes: list[str] = []


class Sleep(msgspec.Struct):
    seconds: float


class Lookup(msgspec.Struct):
    key: str


class NotesProjection(StructProjection[Notes]):
    name = "notes"
    model_type = Notes

    def apply(self, event: EventEnvelope) -> None:
        data = CODEC.decode(event)
        if isinstance(data, NoteAdded):
            self.model.notes.append(data.note)


def build(settings: Settings, replica: str = "r1") -> ServiceRuntime:
    notes = NotesProjection()
    runtime = ServiceRuntime("demo", settings, projections=[notes])

    @runtime.endpoint("echo", Echo)
    async def echo(cmd: Echo, ctx: Context) -> Echoed:
        return Echoed(text=cmd.text * cmd.times, replica=replica)

    @runtime.endpoint("note.add", AddNote)
    async def add_note(cmd: AddNote, ctx: Context) -> Notes:
        await asyncio.sleep(cmd.pause)
        event = CODEC.new(
            NoteAdded(cmd.note),
            stream_type="note",
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
        )
        await runtime.append("notes", [event], None, ctx=ctx)
        await asyncio.sleep(cmd.linger)
        return notes.model

    @runtime.endpoint("notes", msgspec.Struct)
    async def list_notes(cmd: msgspec.Struct, ctx: Context) -> Notes:
        return notes.model

    @runtime.endpoint("sleep", Sleep)
    async def sleep(cmd: Sleep, ctx: Context) -> str:
        await asyncio.sleep(cmd.seconds)
        return "slept"

    @runtime.endpoint("lookup", Lookup)
    async def lookup(cmd: Lookup, ctx: Context) -> str:
        raise NotFound(f"no entry {cmd.key!r}")

    @runtime.endpoint("crash", msgspec.Struct)
    async def crash(cmd: msgspec.Struct, ctx: Context) -> str:
        raise RuntimeError("secret internals: password=hunter2")

    return runtime
