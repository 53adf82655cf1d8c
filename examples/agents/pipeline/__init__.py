"""The pipeline example's agents: a dispatcher, workers and an aggregator (docs/messaging.md)."""
