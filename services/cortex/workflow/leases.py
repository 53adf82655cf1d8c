"""Who runs which execution: a lease per execution in a NATS KV bucket.

A replica claims an execution with `create` (which fails while anyone holds it), renews it well
within the bucket's TTL with `update` at the revision it holds, and deletes it (at that
revision) when the runner ends. A replica that dies stops renewing; the entry expires with the
bucket's TTL and another replica's scan claims it. A renewal that fails means somebody else
holds the lease now: the runner of this replica must stop.
"""

from __future__ import annotations

import contextlib
import dataclasses

from nats.js.api import KeyValueConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from cortex.contracts.subjects import Subjects


def bucket_name(subjects: Subjects) -> str:
    return f"{subjects.events_stream.removesuffix('_EVENTS')}_WORKFLOW_LEASES"


class Leases:
    def __init__(self, kv: KeyValue, holder: str) -> None:
        self._kv = kv
        self._holder = holder.encode()
        self.held: dict[str, int] = {}
        """Execution id -> revision of our lease entry."""

    @classmethod
    async def open(
        cls, js: JetStreamContext, subjects: Subjects, holder: str, ttl: float
    ) -> Leases:
        """The bucket, created if missing (by whichever replica comes first); a bucket with
        another TTL gets this one, as streams get the configuration of the latest start."""
        name = bucket_name(subjects)
        try:
            kv = await js.key_value(name)
            info = await js.stream_info(f"KV_{name}")
            config = info.config
            if config.max_age != ttl:
                window = min(config.duplicate_window or ttl, ttl)  # may not exceed the age
                await js.update_stream(
                    dataclasses.replace(config, max_age=ttl, duplicate_window=window)
                )
        except (NotFoundError, BucketNotFoundError):
            kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=name,
                    history=1,
                    ttl=ttl,
                    description="Which workflow replica runs each execution (leases).",
                )
            )
        return cls(kv, holder)

    async def claim(self, execution_id: str) -> bool:
        if execution_id in self.held:
            return True
        try:
            self.held[execution_id] = await self._kv.create(execution_id, self._holder)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self, execution_id: str) -> bool:
        """False: the lease lapsed and someone else holds it (or nobody, but we lost it)."""
        revision = self.held.get(execution_id)
        if revision is None:
            return False
        try:
            self.held[execution_id] = await self._kv.update(execution_id, self._holder, revision)
        except KeyWrongLastSequenceError:
            del self.held[execution_id]
            return False
        return True

    async def release(self, execution_id: str) -> None:
        revision = self.held.pop(execution_id, None)
        if revision is None:
            return
        # Only our own entry: if it lapsed and another replica claimed it, the delete at our
        # revision fails and leaves theirs alone.
        with contextlib.suppress(Exception):
            await self._kv.delete(execution_id, last=revision)
