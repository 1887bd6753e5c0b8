"""Which relays are due: never-probed first, then oldest; memory limited to the current set."""

from __future__ import annotations

import pytest

from connectors.monitor.schedule import DueTracker

A, B, C = "wss://a.example", "wss://b.example", "wss://c.example"


def test_never_probed_relays_are_due_at_once() -> None:
    tracker = DueTracker(60)
    assert tracker.due({B, A}, now=0) == [A, B]
    assert tracker.seconds_until_next({A}, now=0) == 0


def test_probed_relay_waits_one_interval() -> None:
    tracker = DueTracker(60)
    tracker.probed(A, at=100)
    assert tracker.due({A}, now=159) == []
    assert tracker.seconds_until_next({A}, now=130) == 30
    assert tracker.due({A}, now=160) == [A]


def test_oldest_first_after_new_ones() -> None:
    tracker = DueTracker(10)
    tracker.probed(A, at=5)
    tracker.probed(B, at=1)
    assert tracker.due({A, B, C}, now=100) == [C, B, A]


def test_relays_leaving_the_set_are_forgotten() -> None:
    tracker = DueTracker(60)
    tracker.probed(A, at=100)
    assert tracker.due({B}, now=101) == [B]
    assert tracker.due({A}, now=101) == [A]


def test_empty_set_waits_one_interval_and_bad_interval_is_refused() -> None:
    assert DueTracker(30).seconds_until_next(set(), now=0) == 30
    with pytest.raises(ValueError, match="positive"):
        DueTracker(0)
