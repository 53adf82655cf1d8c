"""Event store schema versions on real SQLite files: recorded when a store is made or first
opened by a version that records them, applied once, and a store newer than this version is
refused, by `cortex admin migrate` and by a service, naming the file and both versions."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cortex.kernel.settings import Settings
from cortex.kernel.store import NewEvent, open_store
from cortex.kernel.store.schema import StoreTooNew
from cortex.kernel.store.sqlite import SCHEMA_VERSION

CORTEX = str(Path(sys.executable).parent / "cortex")


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def set_user_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


async def test_a_new_store_records_its_version_and_an_unversioned_one_keeps_its_events(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path}", "registry")
    assert (store.migrated_from, store.schema_version) == (0, SCHEMA_VERSION)
    await store.append("s-1", [NewEvent(type="s.made", stream_type="s", data=b"{}")], 0)
    await store.close()
    assert user_version(tmp_path / "registry.db") == SCHEMA_VERSION

    # A file from before versions were recorded: its tables, user_version 0.
    set_user_version(tmp_path / "registry.db", 0)
    store = await open_store(f"sqlite:///{tmp_path}", "registry")
    assert store.migrated_from == 0
    assert [e.stream_id for e in await store.read_all()] == ["s-1"]
    await store.close()
    store = await open_store(f"sqlite:///{tmp_path}", "registry")
    assert store.migrated_from == SCHEMA_VERSION  # nothing left to apply
    await store.close()


async def test_a_store_newer_than_this_version_is_refused(tmp_path: Path) -> None:
    await (await open_store(f"sqlite:///{tmp_path}", "registry")).close()
    set_user_version(tmp_path / "registry.db", SCHEMA_VERSION + 1)
    with pytest.raises(StoreTooNew) as refused:
        await open_store(f"sqlite:///{tmp_path}", "registry")
    assert str(tmp_path / "registry.db") in refused.value.message
    assert f"schema version {SCHEMA_VERSION + 1}" in refused.value.message
    assert f"knows versions up to {SCHEMA_VERSION}" in refused.value.message


def test_migrate_applies_once_and_a_service_refuses_a_newer_store(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")},
        "CORTEX_DATA_DIR": str(tmp_path / "data"),
        "CORTEX_NATS_URL": settings.nats_url,
        "CORTEX_NATS_PREFIX": settings.nats_prefix,
        "CORTEX_LOG_PUBLISH": "false",
    }
    first = subprocess.run(
        [CORTEX, "admin", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert f"registry: sqlite:///{tmp_path / 'data' / 'store'}" in first.stdout
    assert first.stdout.count(f"schema 0 -> {SCHEMA_VERSION}") == 4
    again = subprocess.run(
        [CORTEX, "admin", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.stdout.count("nothing to do") == 4

    set_user_version(tmp_path / "data" / "store" / "registry.db", SCHEMA_VERSION + 1)
    refused = subprocess.run(
        [CORTEX, "admin", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "error: event store" in refused.stderr
    assert f"schema version {SCHEMA_VERSION + 1}" in refused.stderr
    service = subprocess.run(
        [sys.executable, "-m", "cortex.registry"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert service.returncode != 0
    assert f"schema version {SCHEMA_VERSION + 1}" in service.stdout + service.stderr
