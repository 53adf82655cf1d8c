"""The messaging service's Prometheus metrics (`cortex_messaging_...`, `cortex_messages_sent`)."""

from __future__ import annotations

from cortex.kernel.metrics import AGENT, counter, documented, each, gauge, histogram, lease_holder

EVERY_REPLICA = each("messaging")
PLATFORM = f"messaging: {lease_holder('messaging.metrics')}"

INDEXED = gauge(
    "cortex_messaging_indexed_messages",
    "Messages in the in-memory message index (bounded)",
    exported_by=EVERY_REPLICA,
)
LOG_LINES_INDEXED = counter(
    "cortex_messaging_log_lines_indexed_total",
    "Log lines written to this replica's index of the stream CORTEX_LOGS (a replica whose "
    "index file is new reads the whole stream)",
    exported_by=EVERY_REPLICA,
)
STATUS_UPDATES = counter(
    "cortex_messaging_status_updates_total",
    "Delivery reports of agent hosts read from the status stream, by status (a replica reads "
    "the stream again from its start when it starts)",
    ["status"],
    exported_by=EVERY_REPLICA,
)
TOPIC_MESSAGES = counter(
    "cortex_messaging_topic_messages_total",
    "Topic messages fanned out to their subscribers",
    exported_by=f"messaging: {lease_holder('messaging.fanout')}",
)
FANOUT_COPIES = counter(
    "cortex_messaging_fanout_copies_total",
    "Copies of topic messages published into subscribers' inboxes (a repeat after a crash "
    "counts again; JetStream drops it)",
    exported_by=f"messaging: {lease_holder('messaging.fanout')}",
)
FANOUT_DURATION = histogram(
    "cortex_messaging_fanout_duration_seconds",
    "Time to copy one topic message to every subscriber, acknowledgements included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    exported_by=f"messaging: {lease_holder('messaging.fanout')}",
)
DEAD_LETTERS_REPLAYED = counter(
    "cortex_messaging_dead_letters_replayed_total",
    "Dead letters published again into their agent's inbox",
    exported_by=EVERY_REPLICA,
)
DEAD_LETTERS_DELETED = counter(
    "cortex_messaging_dead_letters_deleted_total",
    "Dead letters deleted without a replay",
    exported_by=EVERY_REPLICA,
)
SENT = counter(
    "cortex_messages_sent_total",
    "Messages stored in agents' inboxes (from the API, agents, workflow steps, topic fan-out "
    "and replays), by the template of the agent they are for; `unknown` for an agent the "
    "lifecycle service does not know",
    ["template", AGENT],
    exported_by=PLATFORM,
)

# Read at scrape time by `PlatformGauges`, and only on the replica holding the lease.
SUBSCRIPTIONS = "cortex_messaging_subscriptions"
DEAD_LETTERS = "cortex_messaging_dead_letters"
INBOX_BACKLOG = "cortex_messaging_inbox_backlog_messages"
INBOX_UNACKED = "cortex_messaging_inbox_unacked_messages"
documented(SUBSCRIPTIONS, "gauge", "Subscriptions of agents to topics", exported_by=PLATFORM)
documented(
    DEAD_LETTERS,
    "gauge",
    "Dead letters in the dead-letter queue (the depth of the stream CORTEX_DLQ)",
    exported_by=PLATFORM,
)
documented(
    INBOX_BACKLOG,
    "gauge",
    "Inbox messages not yet delivered to any agent host, per inbox partition (the pending "
    "count of the partition's JetStream consumer `inbox-<partition>`)",
    ["partition"],
    exported_by=PLATFORM,
)
documented(
    INBOX_UNACKED,
    "gauge",
    "Inbox messages delivered to an agent host and not yet acknowledged (being handled, or "
    "waiting for their agent to run), per inbox partition",
    ["partition"],
    exported_by=PLATFORM,
)
