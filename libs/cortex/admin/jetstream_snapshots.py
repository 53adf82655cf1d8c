"""Streams saved and brought back whole through JetStream's own snapshot API.

`$JS.API.STREAM.SNAPSHOT.<stream>` makes the server send the stream's store (messages and its
consumers with their delivered and acknowledged positions) as chunks to a subject of ours, each
acknowledged by a reply, an empty chunk last. `$JS.API.STREAM.RESTORE.<stream>` takes the same
bytes back, chunk by chunk, into a NATS where the stream does not exist. What comes back is
the stream as it was, sequence numbers and consumers included: not a copy of its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, BinaryIO

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

CHUNK = 128 * 1024
"""Bytes per chunk, both ways: under NATS's default 1 MiB message limit."""
TIMEOUT = 30.0


class SnapshotError(RuntimeError):
    """JetStream refused or broke off a snapshot or a restore; the message says which stream."""


class StreamSaved(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    config: dict[str, Any]
    state: dict[str, Any]
    """As the server reported them when the snapshot began."""
    size: int = 0
    """Bytes of the snapshot."""


def _reply(raw: bytes, what: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise SnapshotError(f"{what}: JetStream answered {raw[:200]!r}") from None
    if error := found.get("error"):
        raise SnapshotError(f"{what}: {error.get('description') or error}")
    return found


async def stream_names(nc: NATS, prefix: str) -> list[str]:
    """Every stream whose name starts with `prefix`, key-value and object buckets included
    (`KV_<name>`, `OBJ_<name>`) when `prefix` is given bare: the caller asks for each."""
    names: list[str] = []
    offset = 0
    while True:
        reply = await nc.request(
            "$JS.API.STREAM.NAMES", msgspec.json.encode({"offset": offset}), timeout=TIMEOUT
        )
        page = _reply(reply.data, "listing streams")
        found = page.get("streams") or []
        names += [n for n in found if n.startswith(prefix)]
        offset += len(found)
        if not found or offset >= page.get("total", 0):
            return sorted(names)


async def save(nc: NATS, name: str, out: BinaryIO) -> StreamSaved:
    """Write the snapshot of stream `name` to `out`, consumers included."""
    inbox = nc.new_inbox()
    chunks: asyncio.Queue[Msg] = asyncio.Queue()

    async def take(msg: Msg) -> None:
        await chunks.put(msg)

    sub = await nc.subscribe(inbox, cb=take)
    try:
        reply = await nc.request(
            f"$JS.API.STREAM.SNAPSHOT.{name}",
            msgspec.json.encode(
                {"deliver_subject": inbox, "no_consumers": False, "chunk_size": CHUNK}
            ),
            timeout=TIMEOUT,
        )
        begun = _reply(reply.data, f"snapshot of {name}")
        size = 0
        while True:
            try:
                msg = await asyncio.wait_for(chunks.get(), TIMEOUT)
            except TimeoutError:
                raise SnapshotError(f"snapshot of {name}: no data for {TIMEOUT:g}s") from None
            # The end is a message without data: no status when the whole snapshot fitted in
            # one chunk, 204 after full chunks; 408 or 500 say the server gave up, and why.
            status = (msg.headers or {}).get("Status")
            if status not in (None, "204"):
                why = (msg.headers or {}).get("Description", "")
                raise SnapshotError(f"snapshot of {name}: {status} {why}".strip())
            if not msg.data:
                break
            out.write(msg.data)
            size += len(msg.data)
            if msg.reply:
                await nc.publish(msg.reply, b"")  # frees a slot of the server's window
        return StreamSaved(name=name, config=begun["config"], state=begun["state"], size=size)
    finally:
        await sub.unsubscribe()


async def _chunks(source: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


async def restore(
    nc: NATS,
    saved: StreamSaved,
    source: IO[bytes],
    adjust: Callable[[dict[str, Any]], dict[str, Any]] = lambda config: config,
) -> dict[str, Any]:
    """Bring stream `saved.name` back from `source` into a NATS that does not have it; `adjust`
    may change its configuration first (the replicas of another cluster). Returns its state."""
    name = saved.name
    reply = await nc.request(
        f"$JS.API.STREAM.RESTORE.{name}",
        msgspec.json.encode({"config": adjust(dict(saved.config)), "state": saved.state}),
        timeout=TIMEOUT,
    )
    target = _reply(reply.data, f"restore of {name}")["deliver_subject"]
    async for chunk in _chunks(source):
        answer = await nc.request(target, chunk, timeout=TIMEOUT)
        if answer.data:
            _reply(answer.data, f"restore of {name}")
    done = await nc.request(target, b"", timeout=5 * TIMEOUT)
    info = _reply(done.data, f"restore of {name}")
    state: dict[str, Any] = info.get("stream_info", info).get("state", {})
    return state
