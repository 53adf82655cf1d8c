"""The messaging metrics of the whole platform, exported by one replica: the holder of the
lease `messaging.metrics`.

Every replica reads every message into its index, so each could count them all; only the lease
holder does, so that summing over the replicas gives the platform's figure. The same goes for
the gauges of shared state (subscriptions, dead letters, the inbox partitions' backlog): the
holder reports them at scrape time, the others report nothing, and a replica that lets the
lease go stops reporting at once.

Messages are counted by the template of the agent they are for, which a message does not say:
the agent's template is asked of the lifecycle service once per agent and kept.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator

from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cortex.contracts.lifecycle import AgentRef, AgentView
from cortex.kernel.errors import NotFound
from cortex.kernel.logging import get_logger
from cortex.kernel.metrics import CATALOGUE, AgentLabel
from cortex.kernel.service.runtime import ServiceRuntime
from cortex.kernel.waiting import cancel_and_wait
from cortex.messaging.metrics import (
    DEAD_LETTERS,
    INBOX_BACKLOG,
    INBOX_UNACKED,
    SENT,
    SUBSCRIPTIONS,
)
from cortex.messaging.subscription_projection import SubscriptionsProjection

log = get_logger()

POLL_INTERVAL = 5.0
"""Seconds between reads of the streams' and consumers' figures: about a scrape interval."""
KNOWN_AGENTS = 100_000
"""Agents whose template is kept (the least recently counted are forgotten first)."""
UNKNOWN = "unknown"


class AgentTemplates:
    """The template of each agent, asked of the lifecycle service once and kept."""

    def __init__(self, runtime: ServiceRuntime, limit: int = KNOWN_AGENTS) -> None:
        self._runtime = runtime
        self._limit = limit
        self._known: collections.OrderedDict[str, str] = collections.OrderedDict()

    def get(self, agent_id: str) -> str | None:
        template = self._known.get(agent_id)
        if template is not None:
            self._known.move_to_end(agent_id)
        return template

    async def look_up(self, agent_id: str) -> str:
        """Raises what the call raises when the lifecycle service cannot answer."""
        try:
            agent = await self._runtime.client().call(
                "lifecycle", "agent.get", AgentRef(agent_id), AgentView
            )
            template = agent.template
        except NotFound:
            template = UNKNOWN
        self._known[agent_id] = template
        while len(self._known) > self._limit:
            self._known.popitem(last=False)
        return template


class PlatformMetrics(Collector):
    def __init__(
        self, runtime: ServiceRuntime, subscriptions: SubscriptionsProjection, per_agent: bool
    ) -> None:
        self._runtime = runtime
        self._subscriptions = subscriptions
        self._agent = AgentLabel(per_agent)
        self._templates = AgentTemplates(runtime)
        self._waiting: collections.Counter[str] = collections.Counter()
        """Messages counted before their agent's template is known, by agent."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.held = False
        self._dead_letters: int | None = None
        self._backlog: dict[int, tuple[int, int]] = {}
        """Partition -> (pending, unacknowledged) as last read."""
        REGISTRY.register(self)

    # --- under the lease ---------------------------------------------------------------------

    async def begin(self) -> None:
        self.held = True
        self._tasks = [
            asyncio.create_task(self._poll(), name="messaging-metrics-poll"),
            asyncio.create_task(self._resolve(), name="messaging-metrics-templates"),
        ]

    async def end(self) -> None:
        self.held = False
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        self._waiting.clear()
        self._dead_letters = None
        self._backlog = {}

    def sent(self, agent_id: str) -> None:
        """A message for `agent_id` was stored (the index read it live, not at its start)."""
        if not self.held:
            return
        template = self._templates.get(agent_id)
        if template is None:
            self._waiting[agent_id] += 1
            self._wake.set()
            return
        SENT.labels(template, self._agent(agent_id)).inc()

    async def _resolve(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for agent_id in list(self._waiting):
                try:
                    template = await self._templates.look_up(agent_id)
                except Exception as exc:  # lifecycle away: keep the count for the next try
                    log.debug("template of agent not known yet", agent_id=agent_id, error=str(exc))
                    await asyncio.sleep(1.0)
                    self._wake.set()
                    break
                count = self._waiting.pop(agent_id, 0)
                SENT.labels(template, self._agent(agent_id)).inc(count)

    async def _poll(self) -> None:
        subjects = self._runtime.subjects
        while True:
            try:
                js = self._runtime.js
                info = await js.stream_info(subjects.dead_letter_stream)
                self._dead_letters = info.state.messages
                backlog = {}
                for partition in range(subjects.inbox_partitions):
                    with contextlib.suppress(NotFoundError):  # no agent host made it yet
                        consumer = await js.consumer_info(
                            subjects.messages_stream, subjects.inbox_consumer(partition)
                        )
                        backlog[partition] = (consumer.num_pending or 0, consumer.num_ack_pending)
                self._backlog = backlog
            except Exception as exc:  # NATS away: report the last figures until it is back
                log.debug("stream figures not read", error=str(exc) or repr(exc))
            await asyncio.sleep(POLL_INTERVAL)

    # --- at scrape time ----------------------------------------------------------------------

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self.held:
            return
        yield _family(SUBSCRIPTIONS, [((), self._subscriptions.count)])
        if self._dead_letters is not None:
            yield _family(DEAD_LETTERS, [((), self._dead_letters)])
        backlog = sorted(self._backlog.items())
        yield _family(INBOX_BACKLOG, [((str(p),), pending) for p, (pending, _) in backlog])
        yield _family(INBOX_UNACKED, [((str(p),), unacked) for p, (_, unacked) in backlog])

    def close(self) -> None:
        """No longer part of this process's scrapes (a test process builds many services)."""
        REGISTRY.unregister(self)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registered without a first collect: the figures may need NATS, which is not up yet.
        return iter(())


def _family(name: str, samples: list[tuple[tuple[str, ...], float]]) -> GaugeMetricFamily:
    doc = CATALOGUE[name]
    family = GaugeMetricFamily(doc.name, doc.help, labels=doc.labels)
    for labels, value in samples:
        family.add_metric(labels, value)
    return family
