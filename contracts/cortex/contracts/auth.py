"""API tokens and roles of the gateway, and the tokens file that holds them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Role = Literal["viewer", "operator", "admin"]
"""viewer reads; operator also changes agents, messages and workflows; admin also manages the
platform itself (tokens, rebuilds, purges)."""

ROLE_RANK: dict[str, int] = {"viewer": 1, "operator": 2, "admin": 3}


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One API token. Only its SHA-256 is kept; the token itself is shown once, at creation."""

    name: str
    role: Role
    sha256: str
    created_at: datetime


class TokensFile(msgspec.Struct, kw_only=True):
    """`<data dir>/tokens.json` (or `CORTEX_TOKENS_FILE`): the tokens besides the admin token."""

    tokens: list[TokenRecord] = []
