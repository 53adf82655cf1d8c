"""The backup archive: one tar file, written whole or not at all.

    manifest.json                 what is inside, and of which platform (prefix, version)
    events/<service>.jsonl.gz     every event of the service's store, in commit order, with
                                  its stream, version, position and id
    jetstream/<stream>.snapshot   a JetStream snapshot of the stream (messages and consumers)

The file is built in a folder beside it and renamed into place at the end, so an interrupted
backup leaves no archive that looks complete.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import msgspec

from .jetstream_snapshots import StreamSaved

FORMAT = 1
MANIFEST = "manifest.json"


class ArchiveError(ValueError):
    """The file is not a backup this version can restore; the message says why."""


class ServiceSaved(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    last_position: int
    """The store's last position when it was read: the archive holds every event up to it."""
    relay_checkpoint: int
    """Events up to this position had reached `CORTEX_EVENTS` before its snapshot was taken."""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format: int = FORMAT
    created_at: datetime
    cortex_version: str
    prefix: str
    """The platform's subject prefix: stream names and subjects carry it."""
    services: dict[str, ServiceSaved]
    streams: list[StreamSaved]


def events_member(service: str) -> str:
    return f"events/{service}.jsonl.gz"


def stream_member(stream: str) -> str:
    return f"jetstream/{stream}.snapshot"


class ArchiveWriter:
    """Parts written into a scratch folder beside `target`, then one tar renamed onto it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))

    def part(self, member: str) -> Path:
        path = self.folder / member
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def events(self, service: str) -> Iterator[gzip.GzipFile]:
        with gzip.open(self.part(events_member(service)), "wb", compresslevel=6) as out:
            yield out

    def finish(self, manifest: Manifest) -> int:
        """Write the tar (manifest first) and move it into place; returns its size."""
        self.part(MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
        partial = self.folder / "archive.tar"
        with partial.open("wb") as raw:
            with tarfile.open(fileobj=raw, mode="w") as tar:
                tar.add(self.folder / MANIFEST, arcname=MANIFEST)
                for path in sorted(self.folder.rglob("*")):
                    member = path.relative_to(self.folder).as_posix()
                    if path.is_file() and member not in (MANIFEST, "archive.tar"):
                        tar.add(path, arcname=member)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, self.target)
        self.discard()
        return self.target.stat().st_size

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class ArchiveReader:
    """Open for as long as a restore reads it: `close()` (or `with`) ends that."""

    def __init__(self, source: Path) -> None:
        try:
            self._tar = tarfile.open(source, "r")  # noqa: SIM115 - held until close()
            raw = self._read(MANIFEST)
        except (OSError, tarfile.TarError, KeyError) as exc:
            raise ArchiveError(f"{source} is not a cortex backup: {exc}") from None
        try:
            self.manifest = msgspec.json.decode(raw, type=Manifest)
        except msgspec.ValidationError as exc:
            raise ArchiveError(
                f"{source}: its manifest is not one this version reads: {exc}"
            ) from None
        if self.manifest.format != FORMAT:
            raise ArchiveError(
                f"{source} is a backup of format {self.manifest.format}; this version "
                f"restores format {FORMAT}"
            )

    def _read(self, member: str) -> bytes:
        found = self._tar.extractfile(member)
        if found is None:
            raise KeyError(member)
        return found.read()

    def open(self, member: str) -> IO[bytes]:
        found = self._tar.extractfile(member)
        if found is None:
            raise ArchiveError(f"the backup has no {member}")
        return found

    def events(self, service: str) -> gzip.GzipFile:
        return gzip.GzipFile(fileobj=self.open(events_member(service)), mode="rb")

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
