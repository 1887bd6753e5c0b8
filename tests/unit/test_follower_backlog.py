"""When a live REQ's stored answer may have been cut: at a full page, or at the relay's own cap
where a probe showed it."""

from __future__ import annotations

from connectors.follower import stored_answer_cap
from connectors.sync import RelayCap


def test_a_page_bounds_the_answer_when_the_relay_sent_no_answer_yet() -> None:
    assert stored_answer_cap(500, RelayCap()) == 500


def test_a_relay_seen_to_send_at_most_fewer_may_cut_there() -> None:
    assert stored_answer_cap(500, RelayCap(floor=50, probed=True)) == 50


def test_an_unprobed_floor_is_not_a_cap() -> None:
    assert stored_answer_cap(500, RelayCap(floor=3)) == 500


def test_a_relay_that_filled_a_page_is_cut_only_at_the_page() -> None:
    assert stored_answer_cap(500, RelayCap(floor=500)) == 500
    assert stored_answer_cap(100, RelayCap(floor=500)) == 100
