"""Who runs which execution: a lease per execution (`cortex.kernel.leases`), in a bucket of the
workflow service's own.

A replica claims an execution when it starts or takes it over, renews the lease well within
the bucket's TTL and releases it when the runner ends. A replica that dies stops renewing; the
entry expires and another replica's scan claims it. A renewal that fails means somebody else
holds the lease now: the runner of this replica must stop.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from cortex.contracts.subjects import Subjects
from cortex.kernel.leases import LeaseBucket


def bucket_name(subjects: Subjects) -> str:
    return f"{subjects.events_stream.removesuffix('_EVENTS')}_WORKFLOW_LEASES"


async def open_leases(
    js: JetStreamContext, subjects: Subjects, holder: str, ttl: float
) -> LeaseBucket:
    """The bucket, with the platform's stream replicas (see `LeaseBucket.open`)."""
    leases = LeaseBucket(holder)
    await leases.open(
        js,
        bucket_name(subjects),
        ttl=ttl,
        description="Which workflow replica runs each execution (leases).",
        replicas=subjects.stream_replicas,
    )
    return leases
