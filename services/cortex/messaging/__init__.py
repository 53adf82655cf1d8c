"""The messaging service: message status and history, topics and subscriptions, fan-out of topic
messages, dead letters.

Messages themselves travel in JetStream and never pass through this service: it reads them
(headers only) into an in-memory index rebuilt at every start, follows what agent hosts report
about each delivery, copies topic messages into subscribers' inboxes, and inspects, replays and
deletes dead letters. Subscriptions are its only event-sourced state (`subscriptions-<agent_id>`).
It answers `cortex.messaging.message.get|message.list|subscription.add|subscription.remove|
subscription.list|topic.list|dlq.list|dlq.get|dlq.replay|dlq.delete`. Run it with
`python -m cortex.messaging`.
"""
