"""`cortex admin backup FILE`: a consistent archive of a running platform.

What goes in, and in which order (the order is what makes it consistent):

1. Each service's relay checkpoint: every event up to it has reached `CORTEX_EVENTS`.
2. A JetStream snapshot of every stream of the platform that holds what the event stores do
   not: inboxes and topics (`CORTEX_MSGS`, with the consumers' positions), message statuses,
   dead letters, handled message ids, claim-checked payloads, and `CORTEX_EVENTS` with the
   positions of the services that consume it. Not the leases (they belong to processes) and not
   the central logs unless asked (`--logs`).
3. Each service's events, read up to its last position at that moment.

So every stream's snapshot is older than the stores' copies: whatever a consumer had taken
from a stream, the store copy that follows has its cause. After a restore, each relay starts
from its checkpoint, so an event the snapshot of `CORTEX_EVENTS` missed is published then;
one published between steps 1 and 2 is published again, as after a crash (consumers take every
event at least once already).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from cortex.contracts.subjects import SERVICES, Subjects
from cortex.kernel import __version__
from cortex.kernel.bus.relay import CHECKPOINT_KEY
from cortex.kernel.ids import utcnow
from cortex.kernel.settings import Settings
from cortex.kernel.store import EventStore, open_store

from . import jetstream_snapshots as snapshots
from .archive import ArchiveWriter, Manifest, ServiceSaved, stream_member
from .nats_access import admin_connection

BATCH = 5000


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    size: int
    events: int
    streams: int
    stream_bytes: int
    seconds: float


def streams_to_save(names: list[str], subjects: Subjects, logs: bool) -> list[str]:
    prefix = subjects.events_stream.removesuffix("_EVENTS")
    skipped = {f"KV_{subjects.leases_bucket}"} | (set() if logs else {subjects.logs_stream})
    ours = (f"{prefix}_", f"KV_{prefix}_", f"OBJ_{prefix}_")
    return [n for n in names if n.startswith(ours) and n not in skipped]


async def backup(
    settings: Settings,
    target: Path,
    *,
    logs: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> BackupReport:
    started = time.perf_counter()
    subjects = settings.subjects()
    stores: dict[str, EventStore] = {}
    writer = ArchiveWriter(target)
    try:
        for service in SERVICES:
            stores[service] = await open_store(settings.effective_store, service)
        checkpoints = {
            service: int(await store.get_meta(CHECKPOINT_KEY) or 0)
            for service, store in stores.items()
        }
        saved: list[snapshots.StreamSaved] = []
        async with admin_connection(settings, "cortex-backup") as nc:
            names = streams_to_save(await snapshots.stream_names(nc, ""), subjects, logs)
            for name in names:
                with writer.part(stream_member(name)).open("wb") as out:
                    saved.append(await snapshots.save(nc, name, out))
                say(f"stream {name}: {saved[-1].state.get('messages', 0)} messages")
        services: dict[str, ServiceSaved] = {}
        for service, store in stores.items():
            services[service] = await _save_events(writer, service, store, checkpoints[service])
            say(f"events of {service}: {services[service].events}")
        manifest = Manifest(
            created_at=utcnow(),
            cortex_version=__version__,
            prefix=settings.nats_prefix,
            services=services,
            streams=saved,
        )
        size = writer.finish(manifest)
    except BaseException:
        writer.discard()
        raise
    finally:
        for store in stores.values():
            await store.close()
    return BackupReport(
        path=target,
        size=size,
        events=sum(s.events for s in services.values()),
        streams=len(saved),
        stream_bytes=sum(s.size for s in saved),
        seconds=time.perf_counter() - started,
    )


async def _save_events(
    writer: ArchiveWriter, service: str, store: EventStore, checkpoint: int
) -> ServiceSaved:
    mark = await store.last_position()
    count, after = 0, 0
    with writer.events(service) as out:
        while after < mark:
            batch = [e for e in await store.read_all(after, BATCH) if e.position <= mark]
            if not batch:
                break
            out.write(b"".join(msgspec.json.encode(e) + b"\n" for e in batch))
            count += len(batch)
            after = batch[-1].position
    return ServiceSaved(events=count, last_position=mark, relay_checkpoint=min(checkpoint, mark))
