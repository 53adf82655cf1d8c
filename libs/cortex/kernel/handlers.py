"""Which modules a template's handler may name (`package.module:Class`).

An agent host imports the handler's module, and importing runs the module's code in the host:
a template naming `venv.__main__:A` made every host that started it exit. So a handler must
come from the platform's built-in agents, from a module under `CORTEX_AGENT_PATH` (looked for
on disk, never imported to find out), or from a module under a prefix in
`CORTEX_AGENT_MODULES`. The lifecycle service refuses any other at registration, and agent
hosts refuse to import one (a template registered before the rule existed).
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_MODULES = ("cortex.sdk.builtin",)
"""Modules whose agents ship with the platform."""


def refusal(handler: str, agent_path: str, agent_modules: str) -> str | None:
    """Why `handler` may not be used, or None when it may."""
    module = handler.partition(":")[0]
    prefixes = [*BUILTIN_MODULES, *(p.strip() for p in agent_modules.split(",") if p.strip())]
    if any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes):
        return None
    if _under(module, agent_path):
        return None
    return (
        f"module {module!r} is not an allowed source of agent code: handlers come from the "
        "built-in agents (cortex.sdk.builtin), from modules under CORTEX_AGENT_PATH, or from "
        "modules under a prefix in CORTEX_AGENT_MODULES"
    )


def _under(module: str, agent_path: str) -> bool:
    """Whether a folder of `agent_path` holds `module`'s file."""
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    for folder in (Path(p) for p in agent_path.split(":") if p):
        base = folder.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False
