"""NATS as `cortex up` runs it: nobody gets in without a role's NKey, and each role may do only
its own work (docs/security.md, "NATS users and permissions")."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from cortex.contracts.lifecycle import AgentRef
from cortex.embedded.nats_auth import ensure_keys, render_authorization, roles
from cortex.kernel.settings import load_settings
from tests.support.stack import Stack

SUBJECTS = load_settings({}).subjects()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("auth")).start()
    # This module breaks the rules on purpose; the refusals land in nats-server's log.
    running.expect_violations = True
    yield running
    running.stop()


class Signed:
    """A connection as one role, and what NATS refused it."""

    def __init__(self, nc: NATS, refusals: list[str]) -> None:
        self.nc = nc
        self.refusals = refusals

    async def refused(self, what: str, subject: str) -> bool:
        """Whether NATS refused `what` ("publish", "subscription") on `subject` (it says so
        asynchronously, after a flush)."""
        await self.nc.flush()
        for _ in range(50):
            # nats-py reports the server's error in lower case.
            said = f'{what} to "{subject}"'.lower()
            if any(said in refusal.lower() for refusal in self.refusals):
                return True
            await asyncio.sleep(0.02)
        return False


@asynccontextmanager
async def signed_in(stack: Stack, role: str) -> AsyncIterator[Signed]:
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    nc = await stack.nats_connect(role, error_cb=on_error, allow_reconnect=False)
    try:
        yield Signed(nc, refusals)
    finally:
        await nc.close()


def test_no_connection_without_a_roles_key(platform: Stack, tmp_path: Path) -> None:
    async def attempt(**options: object) -> None:
        await nats.connect(
            platform.nats_url, allow_reconnect=False, max_reconnect_attempts=0, **options
        )

    with pytest.raises(Exception, match="Authorization Violation"):
        asyncio.run(attempt())
    # A key of the right kind that the server was not given is refused the same.
    stranger = ensure_keys(tmp_path, SUBJECTS)["publisher"].seed_path
    with pytest.raises(Exception, match="Authorization Violation"):
        asyncio.run(attempt(nkeys_seed=str(stranger)))


def test_seeds_are_private_and_the_server_config_holds_none(platform: Stack) -> None:
    auth = platform.data_dir / "nats" / "auth"
    seeds = sorted(auth.glob("*.nk"))
    assert {seed.stem for seed in seeds} == {role.name for role in roles(SUBJECTS)}
    assert stat.S_IMODE(auth.stat().st_mode) == 0o700
    config = (platform.data_dir / "nats" / "nats.conf").read_text()
    for seed in seeds:
        assert stat.S_IMODE(seed.stat().st_mode) == 0o600, seed
        assert seed.read_text().strip() not in config
    assert config.count('"nkey": "U') == len(seeds)


def test_keys_are_kept_across_starts(tmp_path: Path) -> None:
    first = ensure_keys(tmp_path, SUBJECTS)
    again = ensure_keys(tmp_path, SUBJECTS)
    assert {r: k.public_key for r, k in first.items()} == {
        r: k.public_key for r, k in again.items()
    }
    assert render_authorization(first) == render_authorization(again)
    os.remove(first["host"].seed_path)
    renewed = ensure_keys(tmp_path, SUBJECTS)
    assert renewed["host"].public_key != first["host"].public_key
    assert renewed["gateway"].public_key == first["gateway"].public_key


def test_an_agent_host_sends_messages_but_cannot_command_the_services(platform: Stack) -> None:
    async def check() -> None:
        async with signed_in(platform, "host") as host:
            # What agents' code asks for through its host is answered ...
            reply = await host.nc.request(
                SUBJECTS.command("lifecycle", "agent.get"),
                msgspec.json.encode(AgentRef("nobody")),
                timeout=5,
            )
            assert b"nobody" in reply.data
            # ... commands that change or remove agents and templates never reach a service.
            for verb in ("lifecycle", "agent.purge"), ("registry", "template.register"):
                subject = SUBJECTS.command(*verb)
                await host.nc.publish(subject, b"{}")
                assert await host.refused("publish", subject), subject
            for subject in (
                SUBJECTS.event("lifecycle", "agent.created"),
                f"$JS.API.STREAM.DELETE.{SUBJECTS.messages_stream}",
                f"$JS.API.CONSUMER.DELETE.{SUBJECTS.messages_stream}.inbox-0",
            ):
                await host.nc.publish(subject, b"{}")
                assert await host.refused("publish", subject), subject
            # Nor does it read other roles' replies or the events of every service.
            for subject in ("_CORTEX.gateway.>", "_INBOX.>", SUBJECTS.events_of()):
                await host.nc.subscribe(subject)
                assert await host.refused("subscription", subject), subject

        async with signed_in(platform, "admin") as admin:
            info = await admin.nc.jetstream().stream_info(SUBJECTS.messages_stream)
            assert info.config.name == SUBJECTS.messages_stream

    asyncio.run(check())


def test_an_outside_publisher_may_only_send_messages(platform: Stack) -> None:
    async def check() -> None:
        async with signed_in(platform, "publisher") as outside:
            ack = await outside.nc.jetstream().publish(
                SUBJECTS.agent_inbox("nobody-yet"), b"hello", timeout=5
            )
            assert ack.stream == SUBJECTS.messages_stream
            for subject in (
                SUBJECTS.command("lifecycle", "agent.get"),
                f"$JS.API.CONSUMER.CREATE.{SUBJECTS.messages_stream}",
                f"$JS.API.STREAM.MSG.GET.{SUBJECTS.dead_letter_stream}",
                SUBJECTS.heartbeat("host-1"),
            ):
                await outside.nc.publish(subject, b"{}")
                assert await outside.refused("publish", subject), subject
            for subject in (SUBJECTS.agent_inbox("nobody-yet"), "_CORTEX.>", "$SRV.>"):
                await outside.nc.subscribe(subject)
                assert await outside.refused("subscription", subject), subject

    asyncio.run(check())


def test_the_gateway_and_services_cannot_forge_events(platform: Stack) -> None:
    async def check() -> None:
        async with signed_in(platform, "gateway") as gateway:
            for subject in (
                SUBJECTS.event("lifecycle", "agent.created"),
                f"$JS.API.STREAM.PURGE.{SUBJECTS.events_stream}",
                SUBJECTS.execution_cancelled("x1"),
            ):
                await gateway.nc.publish(subject, b"{}")
                assert await gateway.refused("publish", subject), subject
        async with signed_in(platform, "registry") as registry:
            forged = SUBJECTS.event("lifecycle", "agent.created")
            await registry.nc.publish(forged, b"{}")
            assert await registry.refused("publish", forged)
            own = SUBJECTS.appended("registry")
            await registry.nc.publish(own, b"")
            assert not await registry.refused("publish", own)

    asyncio.run(check())
