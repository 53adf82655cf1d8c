"""Constrained string types shared by the contracts: names users choose and ids we hand out."""

from __future__ import annotations

from typing import Annotated, Any, get_args

import msgspec

DnsLabel = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="a DNS label: 1 to 63 lowercase letters, digits and '-', starting and "
        "ending with a letter or digit (e.g. `my-agent-1`)",
    ),
]
Version = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="a version label of up to 64 letters, digits, '.', '_' and '-', starting "
        "with a letter or digit (e.g. `1`, `2.0.1` or `2026-11-beta`)",
    ),
]
Handler = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
        description="a Python import path `package.module:Class`",
    ),
]
LabelKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_./]{0,62}[A-Za-z0-9])?$",
        description="a label key: 1 to 64 letters, digits, '-', '_', '.' and '/', starting and "
        "ending with a letter or digit",
    ),
]
LabelValue = Annotated[str, msgspec.Meta(max_length=63)]
Labels = dict[LabelKey, LabelValue]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Replicas = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86_400)]
Positive = Annotated[int, msgspec.Meta(ge=1, le=1000)]
PageSize = Annotated[int, msgspec.Meta(ge=1, le=5000)]


def _meaning(constrained: Any) -> tuple[str, str]:
    meta = get_args(constrained)[1]
    return meta.pattern, meta.description


PATTERN_MEANINGS: dict[str, str] = dict(_meaning(t) for t in (DnsLabel, Version, Handler, LabelKey))
"""What a value of each pattern above must look like, in words: a validation error says this
rather than quoting the regular expression at a user who typed a name."""
