"""A small process supervisor: start children in order, restart the ones that die, stop all.

Children run in their own session, so a Ctrl-C reaches only the supervisor, which then stops
them in reverse order (gateway first, nats-server last) and lets each finish its in-flight work.
On Linux each child also gets SIGTERM if the supervisor itself is killed (PR_SET_PDEATHSIG), so
no orphan outlives it. A child that exits on its own is restarted with exponential backoff
(1 s, 2 s, 4 s ... 30 s), reset once it has stayed up for a minute, as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

STABLE_AFTER = 60.0
MAX_BACKOFF = 30.0
CHILD_NAME_VAR = "CORTEX_UP_CHILD"
"""Each child finds its name in the supervisor (and of its log file) in this variable, and so
can whoever looks for one replica among several processes of the same command."""


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], Awaitable[bool]] | None = None
    """Polled after start until true; the next child starts only then."""
    ready_timeout: float = 30.0
    stop_group: str = ""
    """Children started one after another with the same group are stopped together (the
    services, which do not depend on each other); the others one at a time, in reverse."""


# Loaded here, not in the child: between fork and exec the child must not take locks (the
# dynamic loader's) that another thread of the parent may have held at the fork.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the process that started it dies (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    def __init__(self, spec: ChildSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.pump: asyncio.Task[None] | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.failures = 0


class Supervisor:
    def __init__(
        self,
        log_dir: Path,
        out: TextIO,
        *,
        grace: float = 10.0,
        echo: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._log_dir = log_dir
        self._out = out
        self._grace = grace
        self._echo = echo or (lambda _name, _line: True)
        self._children: list[Child] = []
        self._watchers: list[asyncio.Task[None]] = []
        self.stopping = False

    def say(self, message: str) -> None:
        print(message, file=self._out, flush=True)

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    async def start(self, spec: ChildSpec) -> Child:
        """Start a child and wait until it is ready; raises if it dies or times out first."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(spec, self._log_dir)
        self._children.append(child)
        await self._spawn(child)
        if spec.ready:
            await self._wait_ready(child)
        self._watchers.append(asyncio.create_task(self._watch(child), name=f"watch-{spec.name}"))
        return child

    async def stop(self) -> None:
        self.stopping = True
        for task in self._watchers:
            task.cancel()
        pending = list(reversed(self._children))
        while pending:
            batch = [pending.pop(0)]
            group = batch[0].spec.stop_group
            while group and pending and pending[0].spec.stop_group == group:
                batch.append(pending.pop(0))
            await asyncio.gather(*(self._terminate(child) for child in batch))

    def kill_all(self) -> None:
        for child in self._children:
            if child.proc and child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()

    # --- internals -----------------------------------------------------------------------

    async def _spawn(self, child: Child) -> None:
        env = {**os.environ, **child.spec.env, CHILD_NAME_VAR: child.spec.name}
        child.proc = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        child.started_at = time.monotonic()
        child.pump = asyncio.create_task(self._pump(child, child.proc))

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with child.log_path.open("ab") as log:
            while line := await proc.stdout.readline():
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip()
                if self._echo(child.spec.name, text):
                    print(f"{child.spec.name:<10} | {text}", file=self._out, flush=True)

    async def _wait_ready(self, child: Child) -> None:
        assert child.spec.ready is not None
        assert child.proc is not None
        deadline = time.monotonic() + child.spec.ready_timeout
        while time.monotonic() < deadline:
            if child.proc.returncode is not None:
                raise RuntimeError(
                    f"{child.spec.name} exited with code {child.proc.returncode} while starting; "
                    f"see {child.log_path}"
                )
            with contextlib.suppress(Exception):
                if await child.spec.ready():
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(
            f"{child.spec.name} was not ready after {child.spec.ready_timeout:g}s; "
            f"see {child.log_path}"
        )

    async def _watch(self, child: Child) -> None:
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            if self._stopped():
                return
            uptime = time.monotonic() - child.started_at
            child.failures = 0 if uptime >= STABLE_AFTER else child.failures + 1
            delay = min(MAX_BACKOFF, 2.0 ** max(0, child.failures - 1))
            self.say(
                f"cortex up: {child.spec.name} exited with code {code} after {uptime:.1f}s; "
                f"restarting in {delay:g}s (restart #{child.restarts + 1})"
            )
            await asyncio.sleep(delay)
            if self._stopped():
                return
            child.restarts += 1
            await self._spawn(child)

    def _stopped(self) -> bool:
        return self.stopping

    async def _terminate(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=self._grace + 2)
        except TimeoutError:
            self.say(f"cortex up: {child.spec.name} did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if child.pump:
            await asyncio.gather(child.pump, return_exceptions=True)
