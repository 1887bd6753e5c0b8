"""Backoff and circuit breaking: the rules that keep a failing relay from being hammered."""

from __future__ import annotations

import random

import pytest

from connectors.backoff import Backoff, CircuitBreaker


def test_backoff_doubles_up_to_its_ceiling_and_jitters_within_half_of_it() -> None:
    backoff = Backoff(base_s=1.0, max_s=30.0, rng=random.Random(7))

    assert [backoff.ceiling(n) for n in range(7)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert backoff.ceiling(10_000) == 30.0
    delays = [backoff.delay(4) for _ in range(200)]
    assert all(4.0 <= delay <= 8.0 for delay in delays)
    assert len(set(delays)) > 100, "jitter spreads the retries of processes that failed together"


def test_backoff_refuses_a_base_above_its_ceiling() -> None:
    with pytest.raises(ValueError, match="base_s <= max_s"):
        Backoff(base_s=10.0, max_s=1.0)


def test_the_circuit_opens_after_the_threshold_and_half_opens_after_the_cool_down() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_s=60.0)
    breaker.record_failure(100.0)
    breaker.record_failure(101.0)
    assert not breaker.is_open(101.0)
    assert breaker.retry_at() is None

    breaker.record_failure(102.0)
    assert breaker.is_open(102.0)
    assert breaker.is_open(161.9)
    assert breaker.retry_at() == 162.0
    assert not breaker.is_open(162.0), "one attempt goes through after the cool-down"

    breaker.record_failure(170.0)
    assert breaker.is_open(229.0), "a failed half-open attempt opens the circuit again at once"

    breaker.record_success()
    assert not breaker.is_open(229.0)
    assert breaker.failures == 0
    breaker.record_failure(230.0)
    assert not breaker.is_open(230.0)
