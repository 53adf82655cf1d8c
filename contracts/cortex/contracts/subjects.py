"""Every NATS subject and JetStream stream of the platform, built from one root token.

The root defaults to `cortex`. A different root (`CORTEX_NATS_PREFIX`) gives a second, fully
separate platform on the same NATS server: its subjects, streams and service names never overlap
with the first. Tests use that for isolation; operators may use it for tenants.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

SERVICES: tuple[str, ...] = ("registry", "lifecycle", "messaging", "workflow")
"""The domain services, in the order `cortex up` starts them."""

_ROOT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")

Storage = Literal["file", "memory"]


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A JetStream stream the platform creates (or updates) at start."""

    name: str
    subjects: list[str]
    description: str
    storage: Storage = "file"
    max_age_seconds: float = 0
    """0: kept until another limit applies."""
    max_bytes: int = -1
    duplicate_window_seconds: float = 120
    max_consumers: int = 0
    """0: the server's default limit."""
    subject_transform: tuple[str, str] | None = None
    """(source, destination) mapping applied as messages are stored."""
    replicas: int = 1
    """Copies JetStream keeps, each on another server of the cluster."""


class Subjects:
    """Subject and stream names under one root token."""

    def __init__(
        self,
        root: str = "cortex",
        inbox_partitions: int = 8,
        logs_max_bytes: int = 1 << 30,
        *,
        stream_replicas: int = 1,
        events_max_age: float = 7 * 86_400.0,
    ) -> None:
        if not _ROOT.match(root):
            raise ValueError(
                f"NATS prefix {root!r} must be a lowercase token "
                "(letters, digits, '-', '_'; 32 characters at most)"
            )
        if stream_replicas < 1:
            raise ValueError(f"stream replicas must be at least 1, not {stream_replicas}")
        self.root = root
        self.inbox_partitions = inbox_partitions
        self.logs_max_bytes = logs_max_bytes
        self.stream_replicas = stream_replicas
        """Replicas of every stream, key-value bucket and object store of the platform."""
        self.events_max_age = events_max_age
        """Seconds `CORTEX_EVENTS` keeps each domain event (the event stores keep them all)."""
        self._stream_prefix = root.upper().replace("-", "_")

    # --- commands and queries (nats.micro endpoints) -------------------------------------

    def service_name(self, service: str) -> str:
        """The `nats.micro` service name, as `$SRV.PING` reports it."""
        return f"{self.root}-{service}"

    def command(self, service: str, verb: str) -> str:
        """`cortex.<service>.<verb>`; `verb` may hold dots (`agent.scale`)."""
        return f"{self.root}.{service}.{verb}"

    def queue_group(self, service: str) -> str:
        return f"{self.root}-{service}"

    # --- domain events -------------------------------------------------------------------

    def event(self, service: str, event_type: str) -> str:
        """`cortex.evt.<service>.<event_type>`, where `event_type` is `<stream_type>.<event>`."""
        return f"{self.root}.evt.{service}.{event_type}"

    def events_of(self, service: str | None = None) -> str:
        return f"{self.root}.evt.{service}.>" if service else f"{self.root}.evt.>"

    def appended(self, service: str) -> str:
        """Core NATS, no payload that matters: a replica of `service` appended events. The
        other replicas catch their read models up (and the relay publishes) at once."""
        return f"{self.root}.appended.{service}"

    @property
    def leases_bucket(self) -> str:
        """KV bucket of leases on work that one replica of a service does at a time."""
        return f"{self._stream_prefix}_LEASES"

    # --- messages ------------------------------------------------------------------------

    def agent_inbox(self, agent_id: str) -> str:
        return f"{self.root}.msg.agent.{_token(agent_id, 'agent id')}"

    def inbox_partition(self, partition: int) -> str:
        """Inboxes are stored as `cortex.msg.agent.<partition>.<agent_id>` (a stream subject
        transform), so that a fixed set of consumers, one per partition, serves every agent."""
        return f"{self.root}.msg.agent.{partition}.*"

    def inbox_consumer(self, partition: int) -> str:
        return f"inbox-{partition}"

    def stored_inbox(self, agent_id: str) -> str:
        """The stored subjects of one agent's inbox, whatever its partition."""
        return f"{self.root}.msg.agent.*.{_token(agent_id, 'agent id')}"

    def msg_status(self, agent_id: str, msg_id: str) -> str:
        """Where hosts report what happened to a message (stream `CORTEX_MSGSTATUS`). A
        message id from outside may hold characters a subject cannot: they become `-`."""
        return f"{self.root}.msgstatus.{_token(agent_id, 'agent id')}.{safe_token(msg_id)}"

    def msg_statuses_to(self, agent_id: str) -> str:
        """What becomes of every message to one agent."""
        return f"{self.root}.msgstatus.{_token(agent_id, 'agent id')}.*"

    def msg_status_of(self, msg_id: str) -> str:
        return f"{self.root}.msgstatus.*.{safe_token(msg_id)}"

    @property
    def status_stream(self) -> str:
        return f"{self._stream_prefix}_MSGSTATUS"

    @property
    def dedupe_bucket(self) -> str:
        """KV bucket of message ids each agent has handled (effectively-once)."""
        return f"{self._stream_prefix}_DEDUPE"

    @property
    def payload_bucket(self) -> str:
        """Object store bucket of payloads over the inline limit (claim checks)."""
        return f"{self._stream_prefix}_PAYLOADS"

    def deliver(self, agent_id: str) -> str:
        """Core NATS subject on which the hosts running an agent take messages handed over
        by another host (queue group per agent)."""
        return f"{self.root}.deliver.{_token(agent_id, 'agent id')}"

    def instance(self, host_id: str, instance_id: str) -> str:
        """Core NATS subject of one replica (`Discovery.endpoints[].direct`); its host answers
        every replica's with one wildcard subscription."""
        host, instance = _token(host_id, "host id"), _token(instance_id, "instance id")
        return f"{self.root}.instance.{host}.{instance}"

    def instances_of_host(self, host_id: str) -> str:
        return f"{self.root}.instance.{_token(host_id, 'host id')}.*"

    def state(self, agent_id: str) -> str:
        """Core NATS: every applied change of the agent's state document, as a StateView."""
        return f"{self.root}.state.{_token(agent_id, 'agent id')}"

    def execution_cancelled(self, execution_id: str) -> str:
        """Core NATS: tells the replica running an execution to stop its steps now."""
        return f"{self.root}.workflow.cancelled.{_token(execution_id, 'execution id')}"

    def executions_cancelled(self) -> str:
        return f"{self.root}.workflow.cancelled.*"

    def topic(self, topic: str) -> str:
        return f"{self.root}.msg.topic.{topic}"

    def dead_letter(self, agent_id: str) -> str:
        return f"{self.root}.dlq.{_token(agent_id, 'agent id')}"

    # --- hosts and logs ------------------------------------------------------------------

    def host_control(self, host_id: str, verb: str) -> str:
        return f"{self.root}.host.{_token(host_id, 'host id')}.{verb}"

    def heartbeat(self, host_id: str) -> str:
        return f"{self.root}.hb.{_token(host_id, 'host id')}"

    def heartbeats(self) -> str:
        return f"{self.root}.hb.*"

    def log(self, service: str, level: str) -> str:
        return f"{self.root}.log.{service}.{level}"

    # --- streams -------------------------------------------------------------------------

    @property
    def events_stream(self) -> str:
        return f"{self._stream_prefix}_EVENTS"

    @property
    def messages_stream(self) -> str:
        return f"{self._stream_prefix}_MSGS"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self._stream_prefix}_DLQ"

    @property
    def logs_stream(self) -> str:
        return f"{self._stream_prefix}_LOGS"

    def streams(self) -> list[StreamSpec]:
        day = 86_400.0
        return [
            StreamSpec(
                name=self.events_stream,
                subjects=[f"{self.root}.evt.>"],
                description="Domain events of every service, relayed from the event stores.",
                max_age_seconds=self.events_max_age,
                replicas=self.stream_replicas,
            ),
            StreamSpec(
                name=self.messages_stream,
                subjects=[f"{self.root}.msg.>"],
                description="Agent inboxes and topics.",
                max_age_seconds=7 * day,
                subject_transform=(
                    f"{self.root}.msg.agent.*",
                    f"{self.root}.msg.agent.{{{{partition({self.inbox_partitions},1)}}}}"
                    ".{{wildcard(1)}}",
                ),
                replicas=self.stream_replicas,
            ),
            StreamSpec(
                name=self.status_stream,
                subjects=[f"{self.root}.msgstatus.>"],
                description="What became of each message: delivered, acked, failed, dead.",
                max_age_seconds=day,
                replicas=self.stream_replicas,
            ),
            StreamSpec(
                name=self.dead_letter_stream,
                subjects=[f"{self.root}.dlq.>"],
                description="Messages that exhausted their deliveries, per receiving agent.",
                max_age_seconds=30 * day,
                replicas=self.stream_replicas,
            ),
            StreamSpec(
                name=self.logs_stream,
                subjects=[f"{self.root}.log.>"],
                description="Structured log lines of every process.",
                max_age_seconds=3 * day,
                # JetStream reserves a stream's max_bytes against its storage up front.
                max_bytes=self.logs_max_bytes,
                replicas=self.stream_replicas,
            ),
        ]


_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def safe_token(value: str) -> str:
    """`value` usable as one subject token: anything else than letters, digits, `-` and `_`
    becomes `-` (for ids chosen outside the platform, such as a publisher's Nats-Msg-Id)."""
    return _NOT_TOKEN.sub("-", value) or "-"


def _token(value: str, what: str) -> str:
    """Refuse a value that would change the shape of a subject (dots, wildcards, spaces)."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} is not a valid subject token")
    return value
