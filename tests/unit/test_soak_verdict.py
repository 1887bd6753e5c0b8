"""The soak's flat / not-flat verdict on memory series."""

from __future__ import annotations

from bench.soak.run import SoakResult
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


def _soak(worker: list[float], tables: list[float], budget: float = 64.0) -> SoakResult:
    result = SoakResult(minutes=30, rate=100, table_budget_mib=budget)
    times = [60.0 * minute for minute in range(len(worker))]
    result.series = {
        "sink": [(at, 80.0) for at in times],
        "worker": list(zip(times, worker, strict=True)),
    }
    result.tables = dict(zip(times, tables, strict=True))
    return result


def test_a_worker_level_after_its_tables_filled_their_budget_passes() -> None:
    tables = [min(4.0 * minute, 60.0) for minute in range(30)]  # full at minute 15
    result = _soak([150.0 + used for used in tables], tables)
    assert result.ok


def test_a_worker_whose_tables_still_fill_in_the_second_half_fails() -> None:
    tables = [min(2.5 * minute, 60.0) for minute in range(30)]  # full at minute 24
    result = _soak([150.0 + used for used in tables], tables)
    assert not result.ok


def test_tables_past_their_budget_fail_the_soak() -> None:
    tables = [40.0 + 3.0 * minute for minute in range(30)]
    result = _soak([150.0] * 30, tables)
    assert not result.tables_within_budget
    assert not result.ok
