"""Starts that kill the host: noted before an agent's code runs, judged after a restart.

An agent whose import, construction or `on_start` ends the process (`os._exit`, a crash in
native code) leaves no exception to catch, and the lifecycle service only sees its start
request time out: a host fault, so the replica goes to the next host, which dies too. So the
host writes down which replicas it is starting before their code runs, and clears it once they
are up or failed. A host that finds the note at boot died during those starts:

- the first time, each replica named is a *suspect*, started again alone, with a note of its
  own, before anything else of its batch;
- a suspect's solo start that kills the host again convicts it: the host refuses that agent's
  starts from then on (same template version and config), as the agent's fault, which the
  lifecycle counts towards `failed` with the reason.

The note is a small JSON file in the host's data dir, replaced whole on each change.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from cortex.contracts.hosts import ReplicaSpec
from cortex.kernel.logging import get_logger

log = get_logger()


class _Note(msgspec.Struct):
    starting: list[str] = []
    """Keys of the replicas being started when the note was written."""
    solo: bool = False
    """Those were one suspect, started alone."""
    killers: dict[str, str] = {}
    """Key -> the agent's id, for replicas whose start killed this host twice."""


def start_key(spec: ReplicaSpec) -> str:
    """What is judged: the agent, its template version and config (a fix to either is a
    new chance)."""
    config = hashlib.sha256(msgspec.json.encode(spec.config, order="deterministic")).hexdigest()
    return f"{spec.agent_id}@{spec.template_version}#{config[:16]}"


class StartJournal:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._starting: Counter[str] = Counter()
        self._solo = False
        self.suspects: set[str] = set()
        self.killers: dict[str, str] = {}
        self._read()

    def _read(self) -> None:
        try:
            note = msgspec.json.decode(self._path.read_bytes(), type=_Note)
        except FileNotFoundError:
            return
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("start journal unreadable, ignored", path=str(self._path), error=str(exc))
            return
        self.killers = dict(note.killers)
        if note.solo and len(note.starting) == 1:
            (key,) = note.starting
            self.killers[key] = key.partition("@")[0]
            log.warning("an agent's start killed this host twice", start=key)
        else:
            self.suspects = set(note.starting)
            if self.suspects:
                log.warning("this host died starting replicas", starts=sorted(self.suspects))
        self._write()

    def _write(self) -> None:
        note = _Note(starting=sorted(self._starting), solo=self._solo, killers=self.killers)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        tmp.write_bytes(msgspec.json.encode(note))
        tmp.replace(self._path)

    def killed_by(self, spec: ReplicaSpec) -> bool:
        return start_key(spec) in self.killers

    def suspect(self, spec: ReplicaSpec) -> bool:
        return start_key(spec) in self.suspects

    @contextlib.contextmanager
    def starting(self, specs: Sequence[ReplicaSpec], *, solo: bool = False) -> Iterator[None]:
        """Noted while the replicas' code runs; `solo`: one suspect, started alone."""
        keys = [start_key(s) for s in specs]
        if not keys:
            yield
            return
        self._starting.update(keys)
        self._solo = solo
        self._write()
        try:
            yield
        finally:
            self._starting.subtract(keys)
            self._starting += Counter()  # drops the keys that reached zero
            self._solo = False
            if solo:
                # It came through alone: no longer suspect.
                self.suspects.difference_update(keys)
            self._write()
