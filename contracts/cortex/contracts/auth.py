"""API tokens and roles of the gateway, and the tokens file that holds them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

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


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who the bearer token of a request is: a client (the dashboard) shows only what its role
    may do."""

    name: str
    role: Role


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    """Who or what uses the token (`ci`, `dashboard-alice`); unique."""
    role: Role = "viewer"


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never the token or its hash."""

    name: str
    role: Role
    created_at: datetime


class CreatedToken(TokenInfo, frozen=True, kw_only=True):
    token: str
    """The bearer token: shown this once, kept only as a hash."""


class TokenList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TokenInfo]
    """The tokens of the tokens file; the admin token (CORTEX_ADMIN_TOKEN) is not among them."""
