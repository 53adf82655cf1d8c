"""The parts of a backup on a real nats-server and real files: a JetStream snapshot brings a
stream back with its consumers where they were, and an archive that is not one, or of another
version, is refused saying so."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from cortex.admin import jetstream_snapshots as snapshots
from cortex.admin.archive import ArchiveError, ArchiveReader, ArchiveWriter, Manifest
from cortex.kernel.ids import utcnow
from cortex.kernel.settings import Settings


@pytest.fixture
async def nc(make_settings: Callable[..., Settings]) -> AsyncIterator[NATS]:
    client = await nats.connect(make_settings().effective_nats_url)
    yield client
    await client.close()


async def test_a_stream_comes_back_with_its_messages_and_its_consumers_positions(
    nc: NATS, prefix: str
) -> None:
    js = nc.jetstream()
    stream = f"{prefix.upper()}_SNAP"
    await js.add_stream(name=stream, subjects=[f"{prefix}.snap.>"])
    # Incompressible, and several of the snapshot's chunks long (the last one ends differently).
    for _ in range(500):
        await js.publish(f"{prefix}.snap.x", os.urandom(1024))
    consumer = await js.pull_subscribe(f"{prefix}.snap.x", durable="worker", stream=stream)
    taken = await consumer.fetch(100)
    for msg in taken[:60]:
        await msg.ack_sync()  # acknowledged before the snapshot, not on the way
    before = await js.consumer_info(stream, "worker")

    saved_bytes = io.BytesIO()
    saved = await snapshots.save(nc, stream, saved_bytes)
    assert saved.state["messages"] == 500
    assert saved.size == len(saved_bytes.getvalue()) > 3 * snapshots.CHUNK
    await js.delete_stream(stream)

    saved_bytes.seek(0)
    state = await snapshots.restore(nc, saved, saved_bytes)
    assert state["messages"] == 500
    after = await js.consumer_info(stream, "worker")
    assert after.ack_floor.stream_seq == before.ack_floor.stream_seq == 60
    assert after.delivered.stream_seq == before.delivered.stream_seq == 100
    # The next message the consumer hands out is the first it had not delivered.
    consumer = await js.pull_subscribe(f"{prefix}.snap.x", durable="worker", stream=stream)
    [first] = await consumer.fetch(1)
    assert first.metadata.sequence.stream == 101

    again = io.BytesIO(saved_bytes.getvalue())
    with pytest.raises(snapshots.SnapshotError, match=f"restore of {stream}: .*already in use"):
        await snapshots.restore(nc, saved, again)
    await js.delete_stream(stream)


def manifest(**changes: object) -> Manifest:
    given = {
        "created_at": utcnow(),
        "cortex_version": "0",
        "prefix": "cortex",
        "services": {},
        "streams": [],
        **changes,
    }
    return msgspec.convert(given, Manifest)


def test_an_archive_is_whole_or_not_there(tmp_path: Path) -> None:
    target = tmp_path / "b.tar"
    writer = ArchiveWriter(target)
    with writer.events("registry") as out:
        out.write(b'{"x": 1}\n')
    writer.discard()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    writer = ArchiveWriter(target)
    with writer.events("registry") as out:
        out.write(b'{"x": 1}\n')
    size = writer.finish(manifest())
    assert size == target.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["b.tar"]
    with ArchiveReader(target) as reader, reader.events("registry") as lines:
        assert lines.read() == b'{"x": 1}\n'


def test_what_is_not_a_backup_of_this_version_is_refused_saying_why(tmp_path: Path) -> None:
    other = tmp_path / "other.tar"
    other.write_text("not a tar")
    with pytest.raises(ArchiveError, match="is not a cortex backup"):
        ArchiveReader(other)
    newer = tmp_path / "newer.tar"
    ArchiveWriter(newer).finish(manifest(format=2))
    with pytest.raises(ArchiveError, match="format 2; this version restores format 1"):
        ArchiveReader(newer)
    truncated = tmp_path / "truncated.tar"
    ArchiveWriter(truncated).finish(manifest())
    with tarfile.open(truncated) as tar:
        assert tar.getnames() == ["manifest.json"]
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ArchiveError, match="is not a cortex backup"):
        ArchiveReader(truncated)
