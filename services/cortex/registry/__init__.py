"""The registry service: agent hosts, the instances (replicas) they run, their health, discovery,
and each agent's state document.

Hosts heartbeat on `cortex.hb.<host_id>`; the registry records registrations, health changes
and deregistrations as events of one stream per host (`host-<host_id>`), and state writes as
events of one stream per agent (`state-<agent_id>`). It answers
`cortex.registry.host.list|host.get|instance.list|instance.get|discovery.resolve` and
`cortex.registry.state.get|state.put|state.patch|state.history`. Run it with
`python -m cortex.registry`.
"""
