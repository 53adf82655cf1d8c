"""What a command handler knows about the request beyond its body."""

from __future__ import annotations

from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class Context:
    correlation_id: str
    """Ties together everything one user action caused, across services."""
    actor: str | None
    """Who asked (the API token's name through the gateway), recorded on every event."""
    idempotency_key: str | None
    log: FilteringBoundLogger
