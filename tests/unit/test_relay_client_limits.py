"""The client's limits: the message-rate token bucket and the checks on the limit values."""

from __future__ import annotations

import pytest

from connectors.client import ClientLimits
from connectors.client.limits import TokenBucket


def test_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert all(bucket.take(0.0) for _ in range(3))
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True  # one whole token by now
    assert bucket.take(0.1) is False
    assert [bucket.take(60.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_ignores_a_clock_that_goes_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0) is True
    assert bucket.take(5.0) is False


def test_sustained_rate_matches_the_configured_rate() -> None:
    bucket = TokenBucket(rate=100.0, burst=1, now=0.0)
    allowed = sum(bucket.take(step / 1000) for step in range(1, 10_001))  # 10 s, every 1 ms
    assert allowed == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(
    "field", ["connect_timeout", "idle_timeout", "total_timeout", "max_frame_bytes", "max_events"]
)
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ClientLimits(**{field: 0})


def test_zero_garbage_frames_means_any_garbage_ends_the_subscription() -> None:
    assert ClientLimits(max_garbage_frames=0).max_garbage_frames == 0
    with pytest.raises(ValueError, match="max_garbage_frames"):
        ClientLimits(max_garbage_frames=-1)
