"""How messages and dead letters read in a terminal; shared by `messages` and `dlq`."""

from __future__ import annotations

import re
from typing import Any

from cortex.cli.client import CliError, GatewayClient
from cortex.cli.common import segment

AGENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

MAX_LOOKUPS = 20
"""Agents looked up by id per command: enough for a page of one agent's conversations, few
enough that a page from a thousand senders does not take a thousand requests."""


class AgentNames:
    """Agent ids as names: messages carry ids, people know names. An id that cannot be looked up
    (a purged agent, or more agents than `MAX_LOOKUPS`) is shown as it is."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client
        self._names: dict[str, str] = {}

    def learn(self, agent: dict[str, Any]) -> None:
        self._names[agent["id"]] = agent["name"]

    def __call__(self, value: str | None) -> str:
        """A sender or receiver: an agent id becomes its name; `api:admin`, outside senders'
        names and anything else stay as they are."""
        if not value or not AGENT_ID.match(value):
            return value or ""
        if value not in self._names:
            if len(self._names) >= MAX_LOOKUPS:
                return value
            try:
                self._names[value] = self._client.get(f"/api/v1/agents/{segment(value)}")["name"]
            except CliError:
                self._names[value] = value
        return self._names[value]


def destination(record: dict[str, Any], names: AgentNames) -> str:
    """TO/TOPIC: the topic of topic messages and their copies, else the receiving agent."""
    if record.get("topic"):
        return f"topic:{record['topic']}"
    return names(record.get("to"))
