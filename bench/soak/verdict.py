"""Whether a memory series is flat: the least-squares slope of its second half (the first half is
warm-up: caches, buffers and the interpreter's arenas fill), projected over that half, must stay
under `max(FLAT_MIB, FLAT_SHARE * mean)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FLAT_MIB = 8.0
FLAT_SHARE = 0.05


@dataclass(frozen=True)
class Trend:
    slope_mib_per_min: float
    growth_mib: float  # the slope over the second half's span
    mean_mib: float

    @property
    def flat(self) -> bool:
        return self.growth_mib < max(FLAT_MIB, FLAT_SHARE * self.mean_mib)


def trend(series: Sequence[tuple[float, float]]) -> Trend | None:
    """`series` of (seconds, MiB); None with fewer than 3 points in its second half."""
    if not series:
        return None
    half = series[0][0] + (series[-1][0] - series[0][0]) / 2
    tail = [(t, m) for t, m in series if t >= half]
    if len(tail) < 3:
        return None
    mean_t = sum(t for t, _ in tail) / len(tail)
    mean_m = sum(m for _, m in tail) / len(tail)
    spread = sum((t - mean_t) ** 2 for t, _ in tail)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in tail) / spread if spread else 0.0
    return Trend(slope * 60, slope * (tail[-1][0] - tail[0][0]), mean_m)
