"""Create or update the platform's JetStream streams, idempotently, at every start."""

from __future__ import annotations

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
    )


async def ensure_streams(js: JetStreamContext, subjects: Subjects) -> None:
    """Every stream of `subjects.streams()` exists with its current configuration.

    Raises `StreamStorageError` when JetStream cannot reserve a stream's size limit."""
    for spec in subjects.streams():
        try:
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
            log.info("stream created", stream=spec.name)
        except BadRequestError:
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
    ):
        await js.update_stream(config)
        log.info("stream updated", stream=spec.name)


def _transform(config: StreamConfig) -> tuple[str, str] | None:
    t = config.subject_transform
    return (t.src, t.dest) if t else None


DEDUPE_WINDOW = 3600.0
"""How long an agent remembers the ids of messages it handled (effectively-once)."""
PAYLOAD_RETENTION = 30 * 86_400.0
"""How long a payload sent by claim check is kept: as long as a dead letter is (30 days), so
that a large dead message can still be replayed."""


async def ensure_buckets(js: JetStreamContext, subjects: Subjects) -> None:
    """The KV bucket of handled message ids and the object store of large payloads."""
    try:
        await js.key_value(subjects.dedupe_bucket)
    except (NotFoundError, BucketNotFoundError):
        await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.dedupe_bucket,
                history=1,
                ttl=DEDUPE_WINDOW,
                description="Message ids each agent has handled (effectively-once).",
            )
        )
    try:
        await js.object_store(subjects.payload_bucket)
    except (NotFoundError, BucketNotFoundError):
        # nats-py takes the bucket name from its own argument, not from the config.
        await js.create_object_store(
            subjects.payload_bucket,
            config=ObjectStoreConfig(
                ttl=PAYLOAD_RETENTION,
                description="Payloads over the inline limit, fetched by their receivers.",
            ),
        )
