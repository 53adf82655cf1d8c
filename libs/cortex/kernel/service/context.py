"""What a command handler knows about the request beyond its body."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger

from cortex.kernel.store import AlreadyApplied, Claim


class ClaimState(enum.Enum):
    PENDING = "pending"
    """Not written yet: the command's next append carries it."""
    WRITING = "writing"
    """An append carrying it is under way."""
    WON = "won"
    """Written with the command's events: this replica applied the command."""
    LOST = "lost"
    """Found taken: another replica applied the command, and this one wrote nothing."""
    CLOSED = "closed"
    """The handler returned without writing it."""


class PendingClaim:
    """The idempotency record of a command with a key, written with the events of the first
    append the handler makes (`runtime.append(..., ctx=ctx)`) and by no later one."""

    __slots__ = ("claim", "state")

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.state = ClaimState.PENDING

    @contextlib.contextmanager
    def writing(self) -> Iterator[Claim | None]:
        """The claim for one append if it is still to be written, settled by how the append
        ends: an append refused for another reason (a lost race on the stream's version, to
        be decided again) wrote nothing, so the next one carries it."""
        if self.state is not ClaimState.PENDING:
            yield None
            return
        self.state = ClaimState.WRITING
        try:
            yield self.claim
        except AlreadyApplied:
            self.state = ClaimState.LOST
            raise
        except BaseException:
            self.state = ClaimState.PENDING
            raise
        self.state = ClaimState.WON

    def close(self) -> None:
        """The handler has returned: what it left running must not write the claim."""
        if self.state is ClaimState.PENDING:
            self.state = ClaimState.CLOSED


@dataclass(frozen=True, slots=True)
class Context:
    correlation_id: str
    """Ties together everything one user action caused, across services."""
    actor: str | None
    """Who asked (the API token's name through the gateway), recorded on every event."""
    idempotency_key: str | None
    log: FilteringBoundLogger
    claim: PendingClaim | None = None
    """Set by the runtime when the request has an idempotency key."""
