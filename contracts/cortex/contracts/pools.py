"""Pools: named groups of agents (`cortex.lifecycle.pool.<verb>`), e.g. per team or workload.

An agent joins a pool at creation or update; a pool can only be deleted once it is empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec

from cortex.contracts.names import DnsLabel, Labels


class PoolSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`pool.create`."""

    name: DnsLabel
    description: str = ""
    labels: Labels = {}


class PoolView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    labels: dict[str, str]
    agents: int
    """Agents in the pool (not purged)."""
    created_at: datetime


class PoolRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`pool.get`, `pool.delete`."""

    name: str


class ListPools(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`pool.list`."""


class PoolCreated(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "pool.created"
    name: str
    description: str = ""
    labels: dict[str, str] = {}


class PoolDeleted(msgspec.Struct, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "pool.deleted"
    name: str
