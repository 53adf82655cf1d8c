"""A host dedicated to one replica: the `kubernetes` driver's pods.

The replica's spec comes from a file (the agent's ConfigMap, `CORTEX_HOST_REPLICA`) and its
secret config values from the environment (the agent's Secret, `CORTEX_HOST_SECRET_VALUES`).
Its instance id is the host's name, which is the pod's. It starts with the process; if it cannot,
the process ends with the reason as the pod's termination message, and the lifecycle service
counts a failed start of the agent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import msgspec

from cortex.contracts.hosts import ReplicaSpec
from cortex.kernel.secrets import put_values
from cortex.kernel.settings import Settings

TERMINATION_LOG = Path("/dev/termination-log")


class DedicatedReplicaError(Exception):
    """The replica this host is for cannot be read or started; the message says why."""


def load_replica(settings: Settings, host_id: str) -> ReplicaSpec:
    try:
        spec = msgspec.json.decode(Path(settings.host_replica).read_bytes(), type=ReplicaSpec)
        values = msgspec.json.decode(
            settings.host_secret_values or "[]", type=list[tuple[list[str | int], Any]]
        )
        config = put_values(spec.config, [(tuple(path), value) for path, value in values])
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise DedicatedReplicaError(f"CORTEX_HOST_REPLICA {settings.host_replica}: {exc}") from None
    return msgspec.structs.replace(spec, instance_id=host_id, config=config)


def say_why(message: str) -> None:
    """Where Kubernetes reads a container's last words, if this runs in one."""
    with contextlib.suppress(OSError):
        TERMINATION_LOG.write_text(message[-4000:])
