"""Versioned definitions (agent templates, workflow templates): a version is immutable once
registered, and a reference is `name` (the latest version) or `name@version`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from cortex.kernel.errors import Conflict, NotFound


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


V = TypeVar("V", bound=Versioned)
S = TypeVar("S")


def is_new_version(existing: S | None, spec: S, *, kind: str, name: str, version: str) -> bool:
    """True for a version not registered yet, False for the same definition again (a no-op);
    another definition under a registered version is a conflict."""
    if existing is None:
        return True
    if existing == spec:
        return False
    raise Conflict(
        f"{kind} {name}@{version} is registered already with another definition; "
        "register a new version instead",
        details={"name": name, "version": version},
    )


def all_versions(versions: Sequence[V] | None, name: str, *, kind: str) -> list[V]:
    """Every version of `name`, oldest first."""
    if not versions:
        raise NotFound(f"no {kind} {name!r}")
    return list(versions)


def find_version(versions: Sequence[V] | None, ref: str, *, kind: str) -> V:
    """The version `ref` names among `versions` (oldest first)."""
    name, _, version = ref.partition("@")
    known = all_versions(versions, name, kind=kind)
    if not version:
        return known[-1]
    for view in known:
        if view.version == version:
            return view
    raise NotFound(f"{kind} {name!r} has no version {version!r}")
