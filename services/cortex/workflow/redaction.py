"""Credentials out of what an `http` step shows: its output (readable by every viewer) and its
errors (in the timeline and the logs)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

_SECRET_NAME = re.compile(
    r"auth|token|secret|passw|pwd|api[-_]?key|apikey|session|cookie|credential|signature|sig$|"
    r"private|access[-_]?key|^key$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"^\s*(bearer|basic|digest|negotiate|token|apikey)\s+\S"  # an Authorization scheme
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\."  # a JWT
    r"|\b(sk|pk|rk|ghp|gho|ghs|xox[abprs])[-_][\w-]{16,}",  # well-known API key shapes
    re.IGNORECASE,
)


def secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers as step output shows them: a value under a credential's name, or shaped
    like one, becomes `***`. Repeated headers are joined as HTTP joins them."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        shown = REDACTED if secret_name(key) or _SECRET_VALUE.search(value) else value
        out[key] = f"{out[key]}, {shown}" if key in out else shown
    return out


def redact_url(url: str) -> str:
    """The URL with its password and credential-looking query values as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if secret_name(k) or _SECRET_VALUE.search(v) else v) for k, v in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SECRET_IN_TEXT = re.compile(
    r"\b(bearer|basic|digest)\s+[\w.~+/=-]{6,}"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"
    r"|\b(sk|pk|rk|ghp|gho|ghs|xox[abprs])[-_][\w-]{16,}",
    re.IGNORECASE,
)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` (an error, a body excerpt) with every value in `secrets`, and anything shaped
    like a credential, replaced."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SECRET_IN_TEXT.sub(
        lambda m: f"{m[1]} {REDACTED}" if m[1] else REDACTED,
        text,
    )
