"""The embedded platform of `cortex up`: nats-server from the wheel and a process supervisor."""
