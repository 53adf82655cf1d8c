"""API tokens: generating them, keeping their hashes in the tokens file, checking a bearer.

Shared by the gateway (checks) and the CLI (`cortex tokens create`), which is why it lives in
the kernel. The admin token is separate: `CORTEX_ADMIN_TOKEN` or `<data dir>/admin.token`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from cortex.contracts.auth import ROLE_RANK, Role, TokenRecord, TokensFile
from cortex.kernel.errors import Conflict, Invalid, Unavailable
from cortex.kernel.ids import utcnow

TOKEN_PREFIX = "cxt_"
TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    def may(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def read_tokens_file(path: Path) -> TokensFile:
    if not path.exists():
        return TokensFile()
    try:
        return msgspec.json.decode(path.read_bytes(), type=TokensFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"tokens file {path} is not valid: {exc}") from None


@contextlib.contextmanager
def changing(path: Path) -> Iterator[TokensFile]:
    """The tokens file, for a change written back at the end. The CLI and every gateway
    replica of a machine change the same file: an exclusive lock beside it keeps one change
    from undoing another."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise Unavailable(f"the tokens file {path} cannot be changed here: {exc}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_tokens_file(path)
        yield current
        text = msgspec.json.format(msgspec.json.encode(current)).decode() + "\n"
        try:
            write_private(path, text)
        except OSError as exc:
            raise Unavailable(f"the tokens file {path} cannot be changed here: {exc}") from None
    finally:
        os.close(lock)


def create_token(path: Path, name: str, role: Role) -> tuple[str, TokenRecord]:
    """Add a token to the tokens file; the token itself cannot be shown again."""
    if role not in ROLE_RANK:
        raise Invalid.field("role", f"must be one of {', '.join(ROLE_RANK)}")
    if not TOKEN_NAME.fullmatch(name):
        raise Invalid.field("name", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    if name == "admin":
        raise Conflict("the name 'admin' is the admin token's (CORTEX_ADMIN_TOKEN)")
    with changing(path) as current:
        if any(t.name == name for t in current.tokens):
            raise Conflict(f"a token named {name!r} exists already")
        token = generate_token()
        record = TokenRecord(name=name, role=role, sha256=digest(token), created_at=utcnow())
        current.tokens.append(record)
    return token, record


def revoke_token(path: Path, name: str) -> bool:
    with changing(path) as current:
        kept = [t for t in current.tokens if t.name != name]
        found = len(kept) < len(current.tokens)
        current.tokens = kept
    return found


class TokenRegistry:
    """Checks bearer tokens; re-reads the tokens file when it changes, so that a token created
    or revoked with the CLI takes effect without a restart."""

    def __init__(self, admin_token: str, tokens_file: Path) -> None:
        self._admin = digest(admin_token) if admin_token else None
        self._path = tokens_file
        self._mtime: float | None = None
        self._records: list[TokenRecord] = []

    @property
    def has_admin(self) -> bool:
        return self._admin is not None

    def authenticate(self, token: str) -> Principal | None:
        hashed = digest(token)
        if self._admin and hmac.compare_digest(hashed, self._admin):
            return Principal(name="admin", role="admin")
        self._reload()
        for record in self._records:
            if hmac.compare_digest(hashed, record.sha256):
                return Principal(name=record.name, role=record.role)
        return None

    def _reload(self) -> None:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            self._records, self._mtime = [], None
            return
        if mtime != self._mtime:
            self._records = read_tokens_file(self._path).tokens
            self._mtime = mtime
