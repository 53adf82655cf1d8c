"""Durations as templates write them, and the retry backoff's growth, cap and jitter."""

from __future__ import annotations

import random

import pytest

from cortex.workflow.durations import backoff_delay, nominal_backoff, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("10s", 10), ("5m", 300), ("1h", 3600), ("2.5", 2.5), ("0s", 0), (".5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-1s", "1d", "1 fortnight", "1s2", "s"])
def test_what_is_not_a_duration_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_backoff_doubles_from_the_first_pause_up_to_the_ceiling() -> None:
    assert [nominal_backoff(n, 1.0, 5.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert nominal_backoff(0, 1.0, 5.0) == 0
    assert nominal_backoff(3, 0.0, 5.0) == 0
    assert nominal_backoff(10_000, 1.0, 300.0) == 300  # no overflow on long retries


def test_jitter_stays_within_twenty_percent_and_varies() -> None:
    rng = random.Random(7)
    for failures in range(1, 10):
        nominal = nominal_backoff(failures, 0.5, 4.0)
        delays = [backoff_delay(failures, 0.5, 4.0, rng) for _ in range(200)]
        assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays)
        assert max(delays) - min(delays) > 0.2 * nominal  # really spread, not a constant
