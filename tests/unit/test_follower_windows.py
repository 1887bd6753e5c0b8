"""History is pulled newest first in windows that double, so the cursor moves often at first."""

from __future__ import annotations

from connectors.follower import UNSETTLED, history_windows, reopened
from connectors.sync import Coverage, Gap


def test_windows_cover_the_range_newest_first_doubling_without_overlap() -> None:
    windows = list(history_windows(0, 100, 10))

    assert windows == [(91, 100), (71, 90), (31, 70), (0, 30)]
    seconds = [second for low, high in windows for second in range(low, high + 1)]
    assert sorted(seconds) == list(range(101))


def test_a_range_shorter_than_the_first_window_is_one_window() -> None:
    assert list(history_windows(5, 7, 60)) == [(5, 7)]
    assert list(history_windows(7, 7, 60)) == [(7, 7)]


def test_reopening_turns_the_seconds_from_the_edge_into_one_gap_and_keeps_older_gaps() -> None:
    cursor = Coverage(100, 200, (Gap(110, 120, "crowded"), Gap(150, 170, "timeout")))

    again = reopened(cursor, 160)

    assert again == Coverage(
        100, 200, (Gap(110, 120, "crowded"), Gap(150, 159, "timeout"), Gap(160, 200, UNSETTLED))
    )
    assert again.next_windows(210) == [(200, 210), (160, 200), (150, 159), (110, 120), (0, 99)]


def test_reopening_past_the_edge_or_an_empty_cursor_changes_nothing() -> None:
    cursor = Coverage(100, 200)
    assert reopened(cursor, 201) == cursor
    assert reopened(Coverage(), 5) == Coverage()
    assert reopened(cursor, 50) == Coverage(100, 200, (Gap(100, 200, UNSETTLED),))
