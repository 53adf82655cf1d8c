"""The registry service: agent hosts, the instances (replicas) they run, and their health.

Hosts heartbeat on `cortex.hb.<host_id>`; the registry records registrations, health changes
and deregistrations as events of one stream per host (`host-<host_id>`) and answers
`cortex.registry.host.list|host.get|instance.list|instance.get`. Run it with
`python -m cortex.registry`.
"""
