"""Agent classes the end-to-end tests deploy (hosts find them with CORTEX_AGENT_PATH)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cortex.sdk import Agent, Message


class Refuses(Agent):
    """Fails every message, saying why."""

    async def on_message(self, msg: Message) -> str:
        raise ValueError(f"cannot handle {msg.text!r}")


class Narrator(Agent):
    """Logs a line for every message it handles, passes it on to the agent its `forward` names,
    and fails it if it says `"fail": true`."""

    async def on_message(self, msg: Message) -> str:
        self.log.info("narrating", text=msg.text)
        body = msg.json()
        if body.get("forward"):
            await self.send(body["forward"], {"text": body.get("text")})
        if body.get("fail"):
            raise RuntimeError("asked to fail")
        return "told"


class BrokenStart(Agent):
    async def on_start(self) -> None:
        raise RuntimeError("missing API key")


class Flaky(Agent):
    """Fails while its config says `fail: true` (a bug the user then fixes in the config)."""

    async def on_message(self, msg: Message) -> str:
        if self.config.get("fail"):
            raise RuntimeError("upstream API rejected the request")
        return f"done: {msg.text}"


class Recorder(Agent):
    """Appends every payload it handles to its state's `seen` list."""

    async def on_message(self, msg: Message) -> None:
        item = msg.value()
        await self.state.update(lambda v: {"seen": [*(v or {}).get("seen", []), item]})


class Slow(Agent):
    """Works `config.seconds` per message (an LLM call, say)."""

    async def on_message(self, msg: Message) -> str:
        await asyncio.sleep(float(self.config.get("seconds", 1)))
        return f"slow: {msg.text}"


class Ledger(Agent):
    """Writes the id of every message its handler ran for to `config.dir`/<pid>.log."""

    async def on_start(self) -> None:
        self.path = Path(self.config["dir"]) / f"{os.getpid()}.log"

    async def on_message(self, msg: Message) -> None:
        await asyncio.sleep(float(self.config.get("seconds", 0)))
        with self.path.open("a") as fh:
            fh.write(f"{msg.id}\n")


class StepWorker(Agent):
    """For workflow tests: echoes its input after `sleep` seconds, logs `tag` to
    `config.log` (one line per call), and fails the first `fail_times` calls for a `key`."""

    async def on_message(self, msg: Message) -> object:
        body = msg.json()
        await asyncio.sleep(float(body.get("sleep", 0)))
        if self.config.get("log") and body.get("tag"):
            with Path(self.config["log"]).open("a") as fh:
                fh.write(f"{body['tag']}\n")
        if body.get("fail_times"):
            key = str(body.get("key", "default"))
            state = await self.state.update(
                lambda v: {**(v or {}), key: int((v or {}).get(key, 0)) + 1}
            )
            calls = int(state.value[key])
            if calls <= int(body["fail_times"]):
                raise RuntimeError(f"call {calls} of {key} failed on purpose")
        return {"echo": body, "replica": self.instance_id}


class ExitsOnStart(Agent):
    """For containment tests: its start raises SystemExit, as a careless `sys.exit()` does."""

    async def on_start(self) -> None:
        raise SystemExit(3)


class ExitsOnMessage(Agent):
    """For containment tests: every message it gets raises SystemExit."""

    async def on_message(self, msg: Message) -> object:
        raise SystemExit(4)


class SecretTeller(Agent):
    """Answers with a digest of its `api_key` config value and its `region`: proof that it got
    the secret, without the secret itself travelling in a reply."""

    async def on_message(self, msg: Message) -> dict[str, str]:
        import hashlib

        key = str(self.config["api_key"])
        return {
            "api_key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "region": self.config["region"],
        }


class EndsItsHost(Agent):
    """For containment tests: its start ends the whole process at once, as a crash in native
    code would, with no exception for the host to catch."""

    async def on_start(self) -> None:
        os._exit(9)


class WritesItsConfig(Agent):
    """Writes the config it got (secret values open) as JSON to the file its `out` names: what
    a dedicated host gave it, seen from outside."""

    async def on_start(self) -> None:
        import json

        await asyncio.to_thread(Path(self.config["out"]).write_text, json.dumps(self.config))
