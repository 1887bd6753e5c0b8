"""The soak's flat / not-flat verdict on memory series."""

from __future__ import annotations

from bench.soak.verdict import trend


def test_a_series_that_levels_off_after_warm_up_is_flat() -> None:
    series = [(float(t), 100.0 + min(t, 50) + (t % 3) * 0.5) for t in range(0, 200, 5)]
    found = trend(series)
    assert found is not None
    assert found.flat
    assert abs(found.slope_mib_per_min) < 1


def test_a_series_still_growing_in_its_second_half_is_not_flat() -> None:
    series = [(float(t), 100.0 + t * 0.2) for t in range(0, 600, 10)]  # 12 MiB a minute
    found = trend(series)
    assert found is not None
    assert not found.flat
    assert round(found.slope_mib_per_min) == 12
    assert round(found.growth_mib) == 58  # 290 s of the second half


def test_too_few_points_give_no_verdict() -> None:
    assert trend([(0.0, 1.0), (10.0, 2.0)]) is None
    assert trend([]) is None
