"""Kubernetes manifests checked as kubernetes-validate checks them (strict: an unknown field
fails), for the chart's and the `kubernetes` driver's tests."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

CUSTOM_KINDS = frozenset({"ServiceMonitor"})
"""Kinds outside Kubernetes itself: kubernetes-validate ships only the built-in schemas, so it
has none for the Prometheus Operator's ServiceMonitor (a CRD)."""


def manifest_problems(docs: list[dict[str, Any]], version: str) -> list[str]:
    """What is wrong with each manifest for Kubernetes `version`; a kind without a schema
    there is a problem unless it is one of `CUSTOM_KINDS`."""
    problems = []
    for doc in docs:
        where = f"{doc['kind']} {doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if doc["kind"] not in CUSTOM_KINDS:
                problems.append(f"{where}: no schema for this kind in Kubernetes {version}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
    return problems
