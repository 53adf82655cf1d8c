"""The NATS bus: connections, JetStream streams, event publishing and durable consumers."""
