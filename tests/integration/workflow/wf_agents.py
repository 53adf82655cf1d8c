"""Agents the workflow integration tests deploy (the host finds this module through
`agent_path`, as `wf_agents`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cortex.sdk import Agent, Message


class Worker(Agent):
    """Echoes its JSON input as `{"agent": <name>, "got": <input>}` and writes every call to
    `<config.dir>/calls.jsonl` first, so that a test can count them.

    The input may say `sleep` (seconds to work) and `fail_first` (fail the first n calls that
    carry the same `key`, then succeed)."""

    async def on_message(self, msg: Message) -> dict[str, Any]:
        body = msg.json()
        calls = Path(self.config["dir"]) / "calls.jsonl"
        with calls.open("a") as fh:
            fh.write(json.dumps({"agent": self.name, "body": body}) + "\n")
        if isinstance(body, dict) and body.get("fail_first"):
            same = [c for c in read_calls(calls) if c["body"].get("key") == body.get("key")]
            if len(same) <= int(body["fail_first"]):
                raise RuntimeError(f"failure {len(same)} of {body['fail_first']}")
        if isinstance(body, dict) and body.get("sleep"):
            await asyncio.sleep(float(body["sleep"]))
        return {"agent": self.name, "got": body}


def read_calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
