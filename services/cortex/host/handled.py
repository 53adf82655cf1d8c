"""Effectively-once: the ids of messages each agent already handled.

JetStream delivers at least once; a redelivery (an ack lost to a crash or to NATS being away)
must not run the handler again. A replica marks a message handled after its handler succeeded
and before the ack; a redelivered message whose mark exists is acknowledged without running the
handler. Marks live in memory (fast, and enough while NATS is away) and in a KV bucket with a
one-hour time to live (so a restarted replica, or one on another host, still knows). Only a
crash in the instant between a handler's return and its mark can still run a handler twice.
"""

from __future__ import annotations

from collections import OrderedDict

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import Counter

from cortex.kernel.logging import get_logger

log = get_logger()

SKIPPED = Counter(
    "cortex_host_duplicates_skipped_total",
    "Redelivered messages acknowledged without running the handler again",
)

MEMORY = 100_000
"""Marks kept in memory per host (the oldest go first; the KV bucket still has them)."""


class HandledIds:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._recent: OrderedDict[str, None] = OrderedDict()

    async def seen(self, agent_id: str, msg_id: str) -> bool:
        key = _key(agent_id, msg_id)
        if key in self._recent:
            return True
        try:
            await self._kv.get(key)
        except KeyNotFoundError:
            return False
        except Exception as exc:  # NATS away: running it again beats losing it
            log.warning("handled-ids lookup failed", error=str(exc) or repr(exc))
            return False
        self._note(key)
        return True

    async def remember(self, agent_id: str, msg_id: str) -> None:
        key = _key(agent_id, msg_id)
        self._note(key)
        try:
            await self._kv.put(key, b"1")
        except Exception as exc:  # kept in memory; a redelivery to this host is still skipped
            log.warning("handled mark not stored", error=str(exc) or repr(exc))

    def _note(self, key: str) -> None:
        self._recent[key] = None
        self._recent.move_to_end(key)
        while len(self._recent) > MEMORY:
            self._recent.popitem(last=False)


def _key(agent_id: str, msg_id: str) -> str:
    return f"{agent_id}.{msg_id}"
