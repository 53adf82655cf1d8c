"""The messaging service's Prometheus metrics (`cortex_messaging_...`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INDEXED = Gauge(
    "cortex_messaging_indexed_messages", "Messages in the in-memory message index (bounded)"
)
STATUS_UPDATES = Counter(
    "cortex_messaging_status_updates_total",
    "Delivery reports of agent hosts read from the status stream, by status",
    ["status"],
)
TOPIC_MESSAGES = Counter(
    "cortex_messaging_topic_messages_total", "Topic messages fanned out to their subscribers"
)
FANOUT_COPIES = Counter(
    "cortex_messaging_fanout_copies_total",
    "Copies of topic messages published into subscribers' inboxes (a repeat after a crash "
    "counts again; JetStream drops it)",
)
FANOUT_DURATION = Histogram(
    "cortex_messaging_fanout_duration_seconds",
    "Time to copy one topic message to every subscriber, acknowledgements included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
SUBSCRIPTIONS = Gauge("cortex_messaging_subscriptions", "Subscriptions of agents to topics")
DEAD_LETTERS = Gauge("cortex_messaging_dead_letters", "Dead letters kept in the dead-letter queue")
DEAD_LETTERS_REPLAYED = Counter(
    "cortex_messaging_dead_letters_replayed_total",
    "Dead letters published again into their agent's inbox",
)
DEAD_LETTERS_DELETED = Counter(
    "cortex_messaging_dead_letters_deleted_total", "Dead letters deleted without a replay"
)
