"""The messaging service: its endpoints, and `build(settings)`, which wires the parts together."""

from __future__ import annotations

from cortex.contracts.logs import LogPage, SearchLogs
from cortex.contracts.messaging import (
    DeadLetter,
    DeadLetterPage,
    DeadLetterRef,
    GetMessage,
    ListDeadLetters,
    ListMessages,
    ListSubscriptions,
    ListTopics,
    MessagePage,
    MessageRecord,
    Replayed,
    Subscription,
    SubscriptionView,
    TopicView,
)
from cortex.kernel.errors import NotFound
from cortex.kernel.service import Context, ServiceRuntime
from cortex.kernel.settings import Settings
from cortex.messaging.dead_letters import DeadLetters
from cortex.messaging.fanout import Fanout
from cortex.messaging.indexer import Indexer
from cortex.messaging.lifecycle_listener import LifecycleListener
from cortex.messaging.log_indexer import LogIndexer, index_path
from cortex.messaging.message_index import MAX_INDEXED
from cortex.messaging.platform_metrics import PlatformMetrics
from cortex.messaging.subscription_commands import SubscriptionCommands
from cortex.messaging.subscription_domain import check_topic
from cortex.messaging.subscription_projection import SubscriptionsProjection

NAME = "messaging"


def build(settings: Settings, *, max_indexed: int = MAX_INDEXED) -> ServiceRuntime:
    """The messaging service as a runtime ready to `start()`; `max_indexed` bounds the message
    index (the oldest records are forgotten first)."""
    subscriptions = SubscriptionsProjection()
    runtime = ServiceRuntime(
        NAME,
        settings,
        projections=[subscriptions],
        description="CodeValdCortex messaging: message status, topics, fan-out, dead letters, "
        "log search",
    )
    metrics = PlatformMetrics(runtime, subscriptions, settings.metrics_per_agent)
    indexer = Indexer(runtime, max_indexed, on_sent=metrics.sent)
    commands = SubscriptionCommands(runtime)
    lifecycle = LifecycleListener(runtime, commands)
    fanout = Fanout(runtime, subscriptions)
    dead_letters = DeadLetters(runtime, indexer)
    logs = LogIndexer(runtime, index_path(settings.data_path))
    runtime.ready_when("index", lambda: indexer.ready)
    # One replica fans out, so the messages of a topic are copied in the order they were
    # stored; the lease moves it to another replica within seconds when this one dies.
    runtime.singleton("fanout", begin=fanout.start, end=fanout.stop)
    # One replica counts the platform's messages and reports its shared figures, so that a
    # sum over the replicas is the platform's.
    runtime.singleton("metrics", begin=metrics.begin, end=metrics.end)

    @runtime.on_start
    async def start(rt: ServiceRuntime) -> None:
        # The index loads in the background and `/ready` waits for it.
        indexer.start()
        # Searches reach this replica once its log index has caught up with the stream;
        # `/ready` does not wait for that (a full stream takes a while to index).
        logs.start(lambda: rt.open_endpoint("log.search"))
        await lifecycle.start()

    @runtime.on_stop
    async def stop(rt: ServiceRuntime) -> None:
        await lifecycle.stop()
        await indexer.stop()
        await logs.stop()
        metrics.close()

    # --- messages ----------------------------------------------------------------------------

    @runtime.endpoint("message.get", GetMessage)
    async def get_message(req: GetMessage, ctx: Context) -> MessageRecord:
        indexer.require_ready()
        record = indexer.record(req.id)
        if record is None:
            raise NotFound(f"no message {req.id} is known")
        return record

    @runtime.endpoint("message.list", ListMessages)
    async def list_messages(req: ListMessages, ctx: Context) -> MessagePage:
        indexer.require_ready()
        return indexer.messages.page(req.agent_id, req.direction, req.limit, req.before)

    # --- logs -------------------------------------------------------------------------------

    @runtime.endpoint("log.search", SearchLogs, deferred=True)
    async def search_logs(req: SearchLogs, ctx: Context) -> LogPage:
        return await logs.search(req)

    # --- topics and subscriptions ------------------------------------------------------------

    @runtime.endpoint("subscription.add", Subscription)
    async def add_subscription(cmd: Subscription, ctx: Context) -> SubscriptionView:
        await commands.add(cmd, ctx)
        return _subscription(subscriptions, cmd)

    @runtime.endpoint("subscription.remove", Subscription)
    async def remove_subscription(cmd: Subscription, ctx: Context) -> Subscription:
        await commands.remove(cmd, ctx)
        return cmd

    @runtime.endpoint("subscription.list", ListSubscriptions)
    async def list_subscriptions(req: ListSubscriptions, ctx: Context) -> list[SubscriptionView]:
        if req.agent_id is not None:
            views = subscriptions.of_agent(req.agent_id)
            return [v for v in views if req.topic is None or v.topic == req.topic]
        if req.topic is not None:
            return subscriptions.of_topic(check_topic(req.topic))
        return subscriptions.all()

    @runtime.endpoint("topic.list", ListTopics)
    async def list_topics(req: ListTopics, ctx: Context) -> list[TopicView]:
        return subscriptions.topics()

    # --- dead letters ------------------------------------------------------------------------

    @runtime.endpoint("dlq.list", ListDeadLetters)
    async def list_dead_letters(req: ListDeadLetters, ctx: Context) -> DeadLetterPage:
        return await dead_letters.list(req)

    @runtime.endpoint("dlq.get", DeadLetterRef)
    async def get_dead_letter(req: DeadLetterRef, ctx: Context) -> DeadLetter:
        return await dead_letters.get(req.id)

    @runtime.endpoint("dlq.replay", DeadLetterRef)
    async def replay_dead_letter(req: DeadLetterRef, ctx: Context) -> Replayed:
        return await dead_letters.replay(req.id, ctx)

    @runtime.endpoint("dlq.delete", DeadLetterRef)
    async def delete_dead_letter(req: DeadLetterRef, ctx: Context) -> DeadLetter:
        return await dead_letters.delete(req.id, ctx)

    return runtime


def _subscription(subscriptions: SubscriptionsProjection, cmd: Subscription) -> SubscriptionView:
    # The runtime applied the append before returning, so the view is there.
    for view in subscriptions.of_agent(cmd.agent_id):
        if view.topic == cmd.topic:
            return view
    raise NotFound(f"agent {cmd.agent_id} is not subscribed to {cmd.topic}")
