"""`python -m cortex.kernel.metrics_doc`: writes docs/metrics.md, every metric the platform
exports, from what the code declares (`cortex.kernel.metrics`). `make contracts` runs it; a test
fails when the committed file is not what this writes.

The modules of every `cortex` package are imported first, found rather than listed, so that a
metric declared anywhere is in the catalogue.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import cortex
from cortex.kernel.metrics import CATALOGUE, Documented

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"

HEADER = """\
# Metrics

Every metric the platform's processes export, generated from the code by
`python -m cortex.kernel.metrics_doc` (`make contracts`): do not edit it by hand. The rules
behind the names and labels, which process exports the figures of the whole platform, and how to
scrape them are in [observability.md](observability.md#metrics).

A label named `agent` is empty (Prometheus drops it) unless `CORTEX_METRICS_PER_AGENT` is on.
Prometheus adds `instance` and `job` to every series, and the scrape configurations of
`cortex up` and of the Helm chart add `component` (gateway, registry, lifecycle, messaging,
workflow, host, nats) and `process` (the process's name, or its pod's).
"""


def load_everything() -> None:
    """Import every module of every `cortex` package except the `__main__` ones."""
    for package in pkgutil.iter_modules(cortex.__path__, "cortex."):
        module = importlib.import_module(package.name)
        if not package.ispkg:
            continue
        for found in pkgutil.walk_packages(module.__path__, f"{package.name}."):
            if found.name.rsplit(".", 1)[-1] != "__main__":
                importlib.import_module(found.name)


def render() -> str:
    load_everything()
    by_area: dict[str, list[Documented]] = {}
    for doc in CATALOGUE.values():
        by_area.setdefault(doc.area, []).append(doc)
    # The platform's own areas first, then what libraries and Prometheus add.
    order = sorted(by_area, key=lambda area: (not _ours(by_area[area]), area))
    lines = [HEADER]
    for area in order:
        lines += [
            f"## {area}",
            "",
            "| metric | type | labels | exported by | meaning |",
            "| --- | --- | --- | --- | --- |",
        ]
        for doc in sorted(by_area[area], key=lambda d: d.name):
            labels = ", ".join(f"`{label}`" for label in doc.labels) or "-"
            lines.append(
                f"| `{doc.name}` | {doc.kind} | {labels} | {_cell(doc.exported_by)} "
                f"| {_cell(doc.help)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _ours(docs: list[Documented]) -> bool:
    return docs[0].name.startswith("cortex_")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    DOC.write_text(render())
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
