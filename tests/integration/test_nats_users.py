"""`cortex nats-users`: the users and seeds for a NATS the operator runs, taken by a real
nats-server as printed."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from cortex.embedded.natsserver import NatsServerConfig
from tests.support.nats import NatsServerProcess
from tests.support.ports import free_port

CORTEX = str(Path(sys.executable).parent / "cortex")


def nats_users(seeds: Path) -> subprocess.CompletedProcess[str]:
    """`cortex nats-users` for the subject root `tenant`."""
    return subprocess.run(
        [CORTEX, "nats-users", str(seeds)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "CORTEX_NATS_PREFIX": "tenant"},
        check=False,
    )


def test_a_nats_server_admits_the_printed_users_with_their_seeds(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    made = nats_users(seeds)
    assert made.returncode == 0, made.stderr
    assert "seeds (mode 0600)" in made.stderr
    for seed in seeds.glob("*.nk"):
        assert stat.S_IMODE(seed.stat().st_mode) == 0o600
        assert seed.read_text().strip() not in made.stdout

    port = free_port()
    server = NatsServerProcess(
        tmp_path,
        config=NatsServerConfig(
            store_dir=tmp_path / "js", port=port, monitor_port=0, authorization=made.stdout
        ),
    )
    server.start()
    try:
        asyncio.run(_check(server.url, seeds))
    finally:
        server.stop()

    # Run again: the same users, so a NATS already configured keeps admitting the seeds.
    again = nats_users(seeds)
    assert again.stdout == made.stdout


async def _check(url: str, seeds: Path) -> None:
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc).lower())

    outside = await nats.connect(url, nkeys_seed=str(seeds / "publisher.nk"), error_cb=on_error)
    try:
        # The prefix given is the root of every subject the roles may use.
        await outside.publish("tenant.msg.agent.a1", b"hi")
        await outside.publish("cortex.msg.agent.a1", b"hi")
        await outside.flush()
        await asyncio.sleep(0.2)
        assert refusals == ['nats: permissions violation for publish to "cortex.msg.agent.a1"']
    finally:
        await outside.close()
    with pytest.raises(Exception, match="Authorization Violation"):
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
