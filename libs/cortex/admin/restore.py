"""`cortex admin restore FILE`: a backup brought back into an empty platform.

The target is either a new data directory (no CORTEX_NATS_URL: the restore starts the NATS
`cortex up` would, on that directory, for as long as it runs) or a NATS and an event store of
your own (CORTEX_NATS_URL, CORTEX_STORE). Either way it must hold none of the platform's streams
and no events: a restore never merges. Everything is checked before anything is written.

Streams come back as JetStream snapshots (messages and consumers' positions). Events are
appended stream by stream in their commit order, with their ids, versions and times, so the
services' read models, rebuilt from them at their first start, are what they were. Each relay
starts from where it had published before the backup.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.kernel.bus.relay import CHECKPOINT_KEY
from cortex.kernel.settings import Settings, redact_url
from cortex.kernel.store import EventStore, NewEvent, open_store

from . import jetstream_snapshots as snapshots
from .archive import ArchiveReader, ServiceSaved, stream_member
from .nats_access import AdminError, admin_connection, nats_store_exists, own_nats


@dataclass(frozen=True, slots=True)
class RestoreReport:
    events: int
    streams: int
    seconds: float


async def restore(
    settings: Settings, source: Path, *, say: Callable[[str], None] = lambda _: None
) -> RestoreReport:
    started = time.perf_counter()
    reader = ArchiveReader(source)
    manifest = reader.manifest
    if manifest.prefix != settings.nats_prefix:
        raise AdminError(
            f"{source} is a backup of the platform with subject prefix {manifest.prefix!r}, "
            f"and CORTEX_NATS_PREFIX is {settings.nats_prefix!r}: set it to {manifest.prefix!r}"
        )
    embedded = not settings.nats_url
    if embedded and nats_store_exists(settings.data_path):
        raise AdminError(
            f"the data dir {settings.data_path} has a NATS store already: restore into a new "
            "CORTEX_DATA_DIR (or give CORTEX_NATS_URL of an empty NATS)"
        )
    stores: dict[str, EventStore] = {}
    try:
        for service in manifest.services:
            store = await open_store(settings.effective_store, service, sqlite_synchronous="NORMAL")
            stores[service] = store
            if await store.last_position() > 0:
                raise AdminError(
                    f"the {service} event store ({redact_url(store.location)}) holds events "
                    "already: restore needs empty stores (a new CORTEX_DATA_DIR or CORTEX_STORE)"
                )
        async with (
            _target_nats(settings, embedded) as target,
            admin_connection(target, "cortex-restore") as nc,
        ):
            present = set(await snapshots.stream_names(nc, ""))
            clash = sorted(present & {s.name for s in manifest.streams})
            if clash:
                raise AdminError(
                    f"NATS at {redact_url(target.effective_nats_url)} has the stream(s) "
                    f"{', '.join(clash)} already: restore needs a NATS without them"
                )
            replicas = target.nats_replicas

            def adjust(config: dict[str, Any]) -> dict[str, Any]:
                return {**config, "num_replicas": replicas}

            for saved in manifest.streams:
                with reader.open(stream_member(saved.name)) as source_bytes:
                    state = await snapshots.restore(nc, saved, source_bytes, adjust)
                say(f"stream {saved.name}: {state.get('messages', 0)} messages")
        events = 0
        for service, saved_service in manifest.services.items():
            events += await _restore_events(reader, service, saved_service, stores[service])
            say(f"events of {service}: {saved_service.events}")
    finally:
        for store in stores.values():
            await store.close()
        reader.close()
    return RestoreReport(
        events=events, streams=len(manifest.streams), seconds=time.perf_counter() - started
    )


def _target_nats(settings: Settings, embedded: bool) -> Any:
    """The NATS to restore into: one started on the data dir, or the one given."""
    return own_nats(settings) if embedded else contextlib.nullcontext(settings)


async def _restore_events(
    reader: ArchiveReader, service: str, saved: ServiceSaved, store: EventStore
) -> int:
    """Append the service's events in commit order, a run of one stream's events at a time,
    each run at the version it had; then the relay checkpoint, mapped to the new positions."""
    run: list[EventEnvelope] = []
    count = 0
    checkpoint = 0

    async def flush() -> None:
        nonlocal checkpoint
        if not run:
            return
        await store.append(
            run[0].stream_id,
            [
                NewEvent(
                    type=e.type,
                    stream_type=e.stream_type,
                    data=bytes(e.data),
                    event_id=e.event_id,
                    occurred_at=e.occurred_at,
                    correlation_id=e.correlation_id,
                    causation_id=e.causation_id,
                    actor=e.actor,
                    schema_version=e.schema_version,
                )
                for e in run
            ],
            run[0].version - 1,
        )
        if run[0].position <= saved.relay_checkpoint:
            checkpoint = await store.last_position() - sum(
                1 for e in run if e.position > saved.relay_checkpoint
            )
        run.clear()

    decoder = msgspec.json.Decoder(EventEnvelope)
    with reader.events(service) as lines:
        for line in lines:
            event = decoder.decode(line)
            if run and event.stream_id != run[0].stream_id:
                await flush()
            run.append(event)
            count += 1
    await flush()
    if checkpoint:
        await store.put_meta(CHECKPOINT_KEY, str(checkpoint).encode())
    return count
