"""Constrained string types shared by the contracts: names users choose and ids we hand out."""

from __future__ import annotations

from typing import Annotated

import msgspec

DnsLabel = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="A DNS label: lowercase letters, digits and '-', 1 to 63 characters, "
        "starting and ending with a letter or digit.",
    ),
]
Version = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="A version label such as `1`, `2.0.1` or `2026-11-beta`.",
    ),
]
Handler = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
        description="A Python import path `package.module:Class`.",
    ),
]
LabelKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_./]{0,62}[A-Za-z0-9])?$")]
LabelValue = Annotated[str, msgspec.Meta(max_length=63)]
Labels = dict[LabelKey, LabelValue]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Replicas = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86_400)]
Positive = Annotated[int, msgspec.Meta(ge=1, le=1000)]
PageSize = Annotated[int, msgspec.Meta(ge=1, le=5000)]
