"""The agent host (`cortex host`): runs many agent replicas as asyncio tasks in one process.

It registers itself through its heartbeats, starts and stops replicas when the lifecycle
service asks (`cortex.host.<id>.start|stop`), takes messages from the partitioned inbox
consumers and hands each to a replica of its agent (or to a host that runs one), and drains
gracefully on SIGTERM.
"""
