"""Agents and templates as the lifecycle's read models hold them, for driver tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from cortex.contracts.lifecycle import TemplateView
from cortex.lifecycle.projections import AgentRecord

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def template(**changes: Any) -> TemplateView:
    given: dict[str, Any] = {
        "name": "summarizer",
        "version": "3",
        "runtime": "kubernetes",
        "image": "registry.example/summarizer:1.4",
        "handler": "summarizer.agent:Summarizer",
        "registered_at": NOW.isoformat(),
        **changes,
    }
    return msgspec.convert(given, TemplateView, strict=False)


def agent(**changes: Any) -> AgentRecord:
    given: dict[str, Any] = {
        "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "name": "summarizer-eu",
        "template": "summarizer",
        "template_version": "3",
        "status": "deploying",
        "replicas": 1,
        "config": {},
        "labels": {},
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
        **changes,
    }
    return AgentRecord(**given)
