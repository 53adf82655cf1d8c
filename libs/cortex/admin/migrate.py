"""`cortex admin migrate`: every service's event store brought to the schema this version
knows, ahead of starting it (a service does the same for its own store when it opens it)."""

from __future__ import annotations

from dataclasses import dataclass

from cortex.contracts.subjects import SERVICES
from cortex.kernel.settings import Settings
from cortex.kernel.store import open_store


@dataclass(frozen=True, slots=True)
class Migrated:
    service: str
    location: str
    before: int
    after: int


async def migrate(settings: Settings) -> list[Migrated]:
    done: list[Migrated] = []
    for service in SERVICES:
        store = await open_store(settings.effective_store, service)
        try:
            done.append(
                Migrated(service, store.location, store.migrated_from, store.schema_version)
            )
        finally:
            await store.close()
    return done
