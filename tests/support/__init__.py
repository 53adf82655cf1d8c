"""Test harness: real nats-server processes, free ports, whole stacks for end-to-end tests."""
