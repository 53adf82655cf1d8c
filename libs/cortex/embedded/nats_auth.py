"""NATS users of the embedded platform: one NKey per role, each allowed only the subjects its
work needs (docs/security.md, "NATS users and permissions").

`cortex up` keeps each role's seed under `<data dir>/nats/auth/<role>.nk` (mode 0600) and puts
only the public keys into the nats-server configuration, so the configuration holds no secret.
The seeds stay across restarts: a publisher given `publisher.nk` keeps working.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nkeys

from cortex.contracts.subjects import SERVICES, Subjects
from cortex.kernel.tokens import write_private

INBOX_ROOT = "_CORTEX"
"""Platform roles take their request replies under `_CORTEX.<role>.`, each subscribing to its
own only, so none reads another's replies; an outside client keeps NATS's default `_INBOX.`."""


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    responds: bool = False
    """May answer a request on its reply subject (the requester's inbox) without being allowed
    to publish to inboxes in general."""

    def render(self) -> dict[str, object]:
        publish: dict[str, object] = {"allow": list(self.publish)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        rendered: dict[str, object] = {
            "publish": publish,
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.responds:
            rendered["allow_responses"] = True
        return rendered


@dataclass(frozen=True)
class Role:
    name: str
    summary: str
    permissions: Permissions | None = None
    """None: every subject (the `admin` role)."""
    inbox_prefix: str = field(default="")

    @property
    def seed_file(self) -> str:
        return f"{self.name}.nk"


HOST_CALLS = (
    ("lifecycle", "agent.get"),
    ("registry", "state.get"),
    ("registry", "state.put"),
    ("registry", "state.patch"),
    ("messaging", "subscription.add"),
    ("messaging", "subscription.remove"),
)
"""The service commands an agent's code reaches through its host: looking an agent up by name,
its state, its topic subscriptions. Nothing that creates, changes or removes agents."""


def _read_stream(stream: str) -> tuple[str, ...]:
    """JetStream API subjects to read a stream: its info, single messages, and its consumers
    (made, looked at, pulled from, acknowledged; never deleted)."""
    return (
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
    )


def _kv(bucket: str) -> tuple[str, ...]:
    return (f"$KV.{bucket}.>", *_read_stream(f"KV_{bucket}"))


def _objects(bucket: str) -> tuple[str, ...]:
    return (f"$O.{bucket}.>", *_read_stream(f"OBJ_{bucket}"))


def roles(subjects: Subjects) -> list[Role]:
    """Every role of the platform under `subjects`' root, `admin` first."""
    root = subjects.root

    def inbox(role: str) -> str:
        return f"{INBOX_ROOT}.{role}"

    def own_inbox(role: str) -> str:
        return f"{inbox(role)}.>"

    # Every process checks at start that the platform's streams are as it expects; nats-py
    # looks a stream up by subject where none is named.
    jetstream_basics = ("$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.NAMES")
    service_roles = [
        Role(
            name=service,
            summary=f"the {service} service's replicas",
            inbox_prefix=inbox(service),
            permissions=Permissions(
                # A service runs the platform's own code: anything under the root and
                # JetStream, but never another service's events.
                publish=(f"{root}.>", "$JS.>", "$KV.>", "$O.>", "$SRV.>"),
                publish_deny=tuple(
                    subject
                    for other in SERVICES
                    if other != service
                    for subject in (subjects.events_of(other), subjects.appended(other))
                ),
                subscribe=(f"{root}.>", "$SRV.>", own_inbox(service)),
                responds=True,
            ),
        )
        for service in SERVICES
    ]
    return [
        Role(name="admin", summary="`cortex up` itself and operators: every subject"),
        Role(
            name="gateway",
            summary="the HTTP gateway: service commands and reading the streams",
            inbox_prefix=inbox("gateway"),
            permissions=Permissions(
                publish=(
                    *(f"{root}.{service}.>" for service in SERVICES),
                    f"{root}.msg.>",
                    f"{root}.log.>",
                    "$JS.API.>",
                    "$JS.ACK.>",
                    "$KV.>",
                    "$O.>",
                    "$SRV.>",
                ),
                # Reading streams is the gateway's work; changing what they hold is not.
                publish_deny=(
                    "$JS.API.STREAM.CREATE.>",
                    "$JS.API.STREAM.UPDATE.>",
                    "$JS.API.STREAM.DELETE.>",
                    "$JS.API.STREAM.PURGE.>",
                    "$JS.API.STREAM.MSG.DELETE.>",
                    # Only the workflow replica that runs an execution stops its steps.
                    subjects.executions_cancelled(),
                ),
                subscribe=(
                    subjects.events_of(),
                    f"{root}.state.>",
                    f"{root}.msgstatus.>",
                    f"{root}.appended.>",
                    "$SRV.>",
                    own_inbox("gateway"),
                ),
                responds=True,
            ),
        ),
        *service_roles,
        Role(
            name="host",
            summary="agent hosts: messages, status, heartbeats, replies; no service command "
            "beyond what agents' code asks for",
            inbox_prefix=inbox("host"),
            permissions=Permissions(
                publish=(
                    f"{root}.msg.>",
                    f"{root}.msgstatus.>",
                    f"{root}.hb.>",
                    f"{root}.dlq.>",
                    f"{root}.deliver.>",
                    f"{root}.instance.>",
                    f"{root}.log.>",
                    # A reply goes to the inbox the request named, whoever sent it.
                    f"{INBOX_ROOT}.>",
                    "_INBOX.>",
                    *(subjects.command(service, verb) for service, verb in HOST_CALLS),
                    *jetstream_basics,
                    *_read_stream(subjects.messages_stream),
                    *_kv(subjects.dedupe_bucket),
                    *_objects(subjects.payload_bucket),
                ),
                subscribe=(
                    f"{root}.host.>",
                    f"{root}.instance.>",
                    f"{root}.deliver.>",
                    f"{root}.state.>",
                    f"{root}.msgstatus.>",
                    subjects.event("lifecycle", "agent.purged"),
                    "$SRV.>",
                    own_inbox("host"),
                ),
                responds=True,
            ),
        ),
        Role(
            name="publisher",
            summary=f"programs outside the platform: send messages ({root}.msg.>) only",
            permissions=Permissions(
                publish=(f"{root}.msg.>",),
                # Their JetStream acknowledgements come to NATS's default inbox.
                subscribe=("_INBOX.>",),
            ),
        ),
    ]


@dataclass(frozen=True)
class RoleKeys:
    role: Role
    seed_path: Path
    public_key: str


def ensure_keys(auth_dir: Path, subjects: Subjects) -> dict[str, RoleKeys]:
    """Each role's NKey, made once and read again at every start (seeds mode 0600)."""
    auth_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(auth_dir, 0o700)
    keys: dict[str, RoleKeys] = {}
    for role in roles(subjects):
        path = auth_dir / role.seed_file
        if not path.exists():
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            write_private(path, seed.decode() + "\n")
        pair = nkeys.from_seed(path.read_bytes().strip())
        keys[role.name] = RoleKeys(role, path, pair.public_key.decode())
        pair.wipe()
    return keys


def render_authorization(keys: Mapping[str, RoleKeys]) -> str:
    """The nats-server `authorization` block: every role's public key and permissions."""
    users = []
    for entry in keys.values():
        user: dict[str, object] = {"nkey": entry.public_key}
        if entry.role.permissions is not None:
            user["permissions"] = entry.role.permissions.render()
        users.append(user)
    # JSON is valid nats-server configuration.
    return f"authorization: {json.dumps({'users': users}, indent=2)}\n"
