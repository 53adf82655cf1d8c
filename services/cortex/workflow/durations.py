"""Durations as templates write them (`500ms`, `10s`, `5m`, `1h`, `2.5`) and retry backoff."""

from __future__ import annotations

import random
import re

from cortex.contracts.workflow import StepSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

JITTER = 0.2
"""Each pause is its nominal length +-20 %, so that steps failing together (a parallel group
hitting one overloaded service) do not all come back at the same instant."""


def parse_duration(text: str) -> float:
    """Seconds; raises ValueError with a message fit for a user."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration (a number of seconds, or a number with ms, s, m or h)"
        )
    return float(match[1]) * _UNIT[match[2]]


def nominal_backoff(failures: int, backoff: float, max_backoff: float) -> float:
    """The pause after the `failures`-th failed attempt, before jitter: `backoff` after the
    first, doubling each time, never more than `max_backoff`."""
    if failures < 1 or backoff <= 0:
        return 0.0
    # Cap the exponent: 2 ** 1000 is a float overflow, and the cap is reached long before.
    return min(backoff * 2.0 ** min(failures - 1, 64), max_backoff)


def backoff_delay(
    failures: int, backoff: float, max_backoff: float, rng: random.Random | None = None
) -> float:
    nominal = nominal_backoff(failures, backoff, max_backoff)
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return nominal * spread


DEFAULT_TIMEOUT = 60.0
"""Seconds one attempt of a step may take when the step sets no `timeout`."""


def step_timeout(step: StepSpec) -> float:
    return parse_duration(step.timeout) if step.timeout else DEFAULT_TIMEOUT
