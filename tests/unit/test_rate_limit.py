import pytest

from cortex.gateway.rate_limit import RateLimits
from cortex.kernel.errors import RateLimited


def test_a_burst_then_the_rate_then_a_wait_that_says_how_long() -> None:
    limits = RateLimits(rate=2.0, burst=3)
    for _ in range(3):
        limits.take("ci", now=100.0)
    with pytest.raises(RateLimited) as refused:
        limits.take("ci", now=100.0)
    assert refused.value.details["retry_after"] == 1
    assert "retry in 0.50 s" in refused.value.message
    limits.take("ci", now=100.5)  # half a second later: one more
    with pytest.raises(RateLimited):
        limits.take("ci", now=100.5)
    limits.take("other", now=100.5)  # each token has its own bucket
    for _ in range(3):  # a long pause refills the burst, not more
        limits.take("ci", now=200.0)
    with pytest.raises(RateLimited):
        limits.take("ci", now=200.0)


def test_a_rate_of_zero_is_no_limit() -> None:
    limits = RateLimits(rate=0, burst=1)
    for _ in range(1000):
        limits.take("ci", now=1.0)
