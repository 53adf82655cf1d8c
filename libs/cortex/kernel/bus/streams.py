"""Create or update the platform's JetStream streams, idempotently, at every start."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from nats.js.api import (
    KeyValueConfig,
    ObjectStoreConfig,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError, BucketNotFoundError, NotFoundError

from cortex.contracts.subjects import StreamSpec, Subjects
from cortex.kernel.logging import get_logger

log = get_logger()

INSUFFICIENT_STORAGE = 10047
"""JetStream's error code when a stream's max_bytes cannot be reserved on its storage."""
REPLICAS_NOT_CLUSTERED = 10074
"""JetStream's error code for replicas > 1 on a nats-server that is not in a cluster."""
NO_SUITABLE_PEERS = 10005
"""JetStream's error code when the cluster has fewer servers than a stream's replicas."""
STREAM_NAME_IN_USE = 10058
"""JetStream's error code when a stream of that name exists (with another configuration)."""


class StreamStorageError(RuntimeError):
    """JetStream cannot reserve a stream's size limit; the message says which setting helps."""

    def __init__(self, spec: StreamSpec) -> None:
        mib = spec.max_bytes / (1 << 20)
        super().__init__(
            f"JetStream cannot reserve {mib:g} MiB for the stream {spec.name} (insufficient "
            "storage: nats-server's max_file_store, or the free space of its disk, is smaller "
            "than the size limits of its streams); set CORTEX_LOGS_MAX_BYTES to fewer bytes, "
            "or free disk space"
        )


class StreamReplicasError(RuntimeError):
    """JetStream cannot keep as many copies of a stream as the platform asks for."""

    def __init__(self, stream: str, replicas: int, reason: str) -> None:
        super().__init__(
            f"JetStream cannot keep {replicas} replicas of the stream {stream} ({reason}); "
            "set CORTEX_NATS_REPLICAS to at most the number of nats-servers in the cluster "
            "(1 for a single server; `cortex up` with CORTEX_NATS_CLUSTER=3 runs three)"
        )


@contextlib.contextmanager
def placing(stream: str, replicas: int) -> Iterator[None]:
    """Turns JetStream's refusal to place `replicas` copies of `stream` into a
    `StreamReplicasError` that names the setting."""
    try:
        yield
    except APIError as exc:
        if exc.err_code in (REPLICAS_NOT_CLUSTERED, NO_SUITABLE_PEERS):
            raise StreamReplicasError(stream, replicas, exc.description or "refused") from None
        raise


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        storage=StorageType.FILE if spec.storage == "file" else StorageType.MEMORY,
        max_age=spec.max_age_seconds or None,
        max_bytes=spec.max_bytes,
        duplicate_window=spec.duplicate_window_seconds,
        max_consumers=spec.max_consumers or None,
        subject_transform=(
            SubjectTransform(src=spec.subject_transform[0], dest=spec.subject_transform[1])
            if spec.subject_transform
            else None
        ),
        num_replicas=spec.replicas,
    )


async def ensure_streams(js: JetStreamContext, subjects: Subjects) -> None:
    """Every stream of `subjects.streams()` exists with its current configuration.

    Raises `StreamStorageError` when JetStream cannot reserve a stream's size limit, and
    `StreamReplicasError` when the cluster has fewer servers than the streams' replicas."""
    for spec in subjects.streams():
        try:
            with placing(spec.name, spec.replicas):
                await _ensure_stream(js, spec)
        except APIError as exc:
            if exc.err_code == INSUFFICIENT_STORAGE:
                raise StreamStorageError(spec) from None
            raise


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    config = stream_config(spec)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream created", stream=spec.name, replicas=spec.replicas)
        except BadRequestError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            # Another process created it between our look and our add: update instead.
            await js.update_stream(config)
        return
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(config.subjects or [])
        or (current.max_age or 0) != (config.max_age or 0)
        or (current.max_bytes or -1) != (config.max_bytes or -1)
        or (current.duplicate_window or 0) != (config.duplicate_window or 0)
        or current.description != config.description
        or _transform(current) != _transform(config)
        # A cluster changes a stream's replica count in place (a single server refuses).
        or (current.num_replicas or 1) != spec.replicas
    ):
        await js.update_stream(config)
        log.info("stream updated", stream=spec.name, replicas=spec.replicas)


def _transform(config: StreamConfig) -> tuple[str, str] | None:
    t = config.subject_transform
    return (t.src, t.dest) if t else None


DEDUPE_WINDOW = 3600.0
"""How long an agent remembers the ids of messages it handled (effectively-once)."""
PAYLOAD_RETENTION = 30 * 86_400.0
"""How long a payload sent by claim check is kept: as long as a dead letter is (30 days), so
that a large dead message can still be replayed."""


async def ensure_buckets(js: JetStreamContext, subjects: Subjects) -> None:
    """The KV bucket of handled message ids and the object store of large payloads, each with
    `subjects.stream_replicas` replicas (an existing one is moved to that count).

    Raises `StreamReplicasError` when the cluster has fewer servers than that."""
    replicas = subjects.stream_replicas
    dedupe = f"KV_{subjects.dedupe_bucket}"
    try:
        await js.key_value(subjects.dedupe_bucket)
    except (NotFoundError, BucketNotFoundError):
        with placing(dedupe, replicas):
            await js.create_key_value(
                KeyValueConfig(
                    bucket=subjects.dedupe_bucket,
                    history=1,
                    ttl=DEDUPE_WINDOW,
                    description="Message ids each agent has handled (effectively-once).",
                    replicas=replicas,
                )
            )
    else:
        await ensure_replicas(js, dedupe, replicas)
    payloads = f"OBJ_{subjects.payload_bucket}"
    try:
        await js.object_store(subjects.payload_bucket)
    except (NotFoundError, BucketNotFoundError):
        with placing(payloads, replicas):
            # nats-py takes the bucket name from its own argument, not from the config.
            await js.create_object_store(
                subjects.payload_bucket,
                config=ObjectStoreConfig(
                    ttl=PAYLOAD_RETENTION,
                    description="Payloads over the inline limit, fetched by their receivers.",
                    replicas=replicas,
                ),
            )
    else:
        await ensure_replicas(js, payloads, replicas)


async def ensure_replicas(js: JetStreamContext, stream: str, replicas: int) -> None:
    """The existing `stream` (one behind a KV bucket or an object store) keeps `replicas`
    copies. Raises `StreamReplicasError` when the cluster has fewer servers than that."""
    config = (await js.stream_info(stream)).config
    if (config.num_replicas or 1) == replicas:
        return
    with placing(stream, replicas):
        await js.update_stream(dataclasses.replace(config, num_replicas=replicas))
    log.info("stream updated", stream=stream, replicas=replicas)
