"""`python -m cortex.contracts.generate`: write the JSON Schema of every contract Struct.

One file per Struct under `contracts/schema/`, named `<module>.<Struct>.json`. A test renders
the same documents and fails when the committed ones differ (`make contracts` refreshes them), so
a document must depend on the contracts alone, not on the library versions that render it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path
from typing import Any

import msgspec

import cortex.contracts

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
_SKIP = {"generate"}


def contract_structs() -> list[type[msgspec.Struct]]:
    """Every Struct defined (not imported) in a module of `cortex.contracts`."""
    found: list[type[msgspec.Struct]] = []
    for info in sorted(pkgutil.iter_modules(cortex.contracts.__path__), key=lambda m: m.name):
        if info.name in _SKIP:
            continue
        module = importlib.import_module(f"cortex.contracts.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, msgspec.Struct) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def normalize_descriptions(node: Any) -> Any:
    """`node` with every `description` string in it, at any depth, in `inspect.cleandoc` form.

    Docstrings reach a document with whatever indentation the renderer leaves in them: msgspec
    0.23 removes it and older releases kept it, Litestar copies enum docstrings as they are, and
    Python 3.13 dedents docstrings itself. One normal form makes the text the same on every
    machine. A field named `description` maps to a schema, not a string, so it is walked, not
    rewritten.
    """
    if isinstance(node, dict):
        return {
            key: (
                inspect.cleandoc(value)
                if key == "description" and isinstance(value, str)
                else normalize_descriptions(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [normalize_descriptions(item) for item in node]
    return node


def render() -> dict[str, str]:
    """File name -> JSON text, for every contract Struct."""
    out: dict[str, str] = {}
    for struct in contract_structs():
        module = struct.__module__.removeprefix("cortex.contracts.")
        schema = normalize_descriptions(msgspec.json.schema(struct))
        schema["$id"] = f"https://codevald.dev/schemas/{module}.{struct.__name__}.json"
        out[f"{module}.{struct.__name__}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return out


def main() -> None:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for stale in SCHEMA_DIR.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} schemas to contracts/schema/")


if __name__ == "__main__":
    main()
