"""`GET /api/v1/events`: one live stream of the platform's changes, filtered by kind and id,
that a client resumes after a lost connection or a gateway restart without missing a change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cortex.cli.sse import ServerSentEvent, parse_events
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def changes(api: httpx.Client, **params: Any) -> Iterator[tuple[str, ServerSentEvent]]:
    """("following", empty) once the stream is in place, then ("change", event) per change."""
    headers = {}
    if "last_event_id" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id"))
    with api.stream("GET", "/api/v1/events", params=params, headers=headers) as stream:
        assert stream.status_code == 200, stream.read()
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        for line in lines:
            if line == ": following":
                yield "following", ServerSentEvent("", "")
                break
        for event in parse_events(lines):
            yield "change", event


def test_an_agents_changes_arrive_live_and_resume_after_a_gateway_restart(
    stack: Stack,
) -> None:
    with stack.client() as api:
        stream = changes(api, kind="agent")
        assert next(stream)[0] == "following"
        agent = api.post("/api/v1/agents", json={"name": "watched", "template": "echo"}).json()
        created = next(e for _, e in stream if json.loads(e.data)["id"] == agent["id"])
        stream.close()
        change = json.loads(created.data)
        assert created.event == "agent.created"
        assert created.id == str(change["seq"])
        assert (change["kind"], change["service"], change["version"]) == ("agent", "lifecycle", 1)
        assert change["data"]["name"] == "watched"

        # While nobody follows, the agent changes and the gateway restarts.
        scaled = api.post(f"/api/v1/agents/{agent['id']}/scale", json={"replicas": 2})
        assert scaled.status_code == 202, scaled.text
        stack.kill("gateway")
        eventually(lambda: api.get("/ready").status_code == 200, 30, "the gateway back")

        resumed = changes(api, id=agent["id"], last_event_id=created.id)
        assert next(resumed)[0] == "following"
        seen: list[ServerSentEvent] = []
        for _, event in resumed:
            seen.append(event)
            if event.event == "agent.scaled":
                break
        resumed.close()
        # Everything after the last change seen, in order, and nothing before it again.
        seqs = [int(event.id or 0) for event in seen]
        assert seqs == sorted(set(seqs))
        assert seqs[0] > int(created.id or 0)
        assert json.loads(seen[-1].data)["data"] == {"replicas": 2, "previous": 1}


def test_a_kind_that_does_not_exist_is_refused_by_name(stack: Stack) -> None:
    with stack.client() as api:
        refused = api.get("/api/v1/events", params={"kind": "agnet"})
        assert refused.status_code == 422
        assert "kind" in refused.text
        bad_resume = api.get("/api/v1/events", headers={"Last-Event-ID": "yesterday"})
        assert bad_resume.status_code == 422
        assert "Last-Event-ID" in bad_resume.text
