"""Whether an agent handles its messages now, for everyone who waits on an answer: the gateway's
`?wait=` and `?confirm=`, workflow agent steps, and the CLI's note after a send.

Kept free of NATS imports: the CLI uses it too, and every command pays for what it imports.
"""

from __future__ import annotations

from cortex.contracts.lifecycle import AgentStatus

SERVING: frozenset[AgentStatus] = frozenset({"deploying", "running", "scaling"})
"""Agent statuses in which a message to the agent is handled. In any other the message waits in
its inbox until the agent runs, so whoever waits for its answer would only wait out a timeout."""


def not_serving(name: str, status: AgentStatus) -> str | None:
    """Why a message to agent `name` cannot be handled now (`agent x is terminated, not
    running`); None when it can. The one test for every caller that waits for an answer."""
    if status in SERVING:
        return None
    return f"agent {name} is {status}, not running"


def how_to_deploy(name: str, status: AgentStatus) -> str:
    """What makes an agent that is `not_serving` handle its messages."""
    if status == "terminating":
        return f"once it has terminated, deploy it with: cortex agents deploy {name}"
    return f"deploy it with: cortex agents deploy {name}"
