"""Relay health from probes, as pure math over a bounded state per relay.

Windows end at the newest probe's `probed_at`, not at the worker's clock, so the same probes give
the same health whenever (and however often) they are replayed. Availability is counted in hourly
buckets (at most one week of them); RTT percentiles come from at most `rtt_samples` recent samples
per check. Neither grows with the number of probes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bigbrotr.config import StreamSettings

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
CHECKS = ("open", "read", "write")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AVAILABILITY_WINDOWS = {"24h": DAY_MS, "7d": WEEK_MS}

Bucket = tuple[int, int, int]  # hour start (ms), probes, probes with the relay up
Sample = tuple[int, int]  # probed_at (ms), rtt (ms)


@dataclass(frozen=True)
class HealthWindows:
    """How much RTT history each relay keeps and which percentiles it reports."""

    rtt_window_ms: int = DAY_MS
    rtt_samples: int = 100
    percentiles: tuple[int, ...] = (50, 95)

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> HealthWindows:
        return cls(
            rtt_window_ms=settings.health_rtt_window_s * 1000,
            rtt_samples=settings.health_rtt_samples,
            percentiles=tuple(settings.health_percentiles),
        )


@dataclass(frozen=True)
class RelayHealth:
    """The state kept per relay; `to_json` adds the figures readers want."""

    relay_url: str
    last_probe_at: int = -1
    last_checks: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    hours: tuple[Bucket, ...] = ()
    samples: dict[str, tuple[Sample, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RelayHealth:
        return cls(
            relay_url=value["relay_url"],
            last_probe_at=value["last_probe_at"],
            last_checks=value["last_probe"],
            hours=tuple((start, probes, up) for start, probes, up in value["hours"]),
            samples={
                check: tuple((at, rtt) for at, rtt in samples)
                for check, samples in value["samples"].items()
            },
        )

    def to_json(self, windows: HealthWindows) -> dict[str, Any]:
        last_open = self.last_checks.get("open")
        value: dict[str, Any] = {
            "relay_url": self.relay_url,
            "last_probe_at": self.last_probe_at,
            "last_probe": self.last_checks,
            "up": bool(last_open and last_open["ok"]),
        }
        for name, span in AVAILABILITY_WINDOWS.items():
            probes, up = self.counts_within(span)
            value[f"probes_{name}"] = probes
            value[f"availability_{name}"] = up / probes if probes else None
        value["rtt_ms"] = {
            check: _rtt_summary([rtt for _, rtt in samples], windows.percentiles)
            for check, samples in self.samples.items()
        }
        value["hours"] = [list(bucket) for bucket in self.hours]
        value["samples"] = {
            check: [list(sample) for sample in samples] for check, samples in self.samples.items()
        }
        return value

    def counts_within(self, span_ms: int) -> tuple[int, int]:
        """Probes and up probes in the hourly buckets of the `span_ms` ending at the newest one."""
        first = _hour(self.last_probe_at) - span_ms + HOUR_MS
        inside = [bucket for bucket in self.hours if bucket[0] >= first]
        return sum(bucket[1] for bucket in inside), sum(bucket[2] for bucket in inside)


def _rtt_summary(rtts: list[int], percentiles: tuple[int, ...]) -> dict[str, int | None]:
    return {**{f"p{p}": percentile(rtts, p) for p in percentiles}, "samples": len(rtts)}


def percentile(values: Sequence[int], p: int) -> int | None:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def apply_probe(
    value: dict[str, Any] | None, probe: dict[str, Any], windows: HealthWindows
) -> dict[str, Any]:
    """The relay's table value after one more `RelayProbe` record."""
    health = RelayHealth.from_json(value) if value else RelayHealth(probe["relay_url"])
    return add_probe(health, probe, windows).to_json(windows)


def add_probe(health: RelayHealth, probe: dict[str, Any], windows: HealthWindows) -> RelayHealth:
    """A probe can arrive late: it counts where its time falls, if that is still in a window."""
    at = _millis(probe["probed_at"])
    checks = {name: _check(probe["checks"].get(name)) for name in CHECKS}
    newest = max(health.last_probe_at, at)
    is_up = bool(checks["open"] and checks["open"]["ok"])
    return replace(
        health,
        last_probe_at=newest,
        last_checks=checks if at >= health.last_probe_at else health.last_checks,
        hours=_count_hour(health.hours, _hour(at), is_up, oldest=_hour(newest) - WEEK_MS + HOUR_MS),
        samples={
            name: _keep_samples(
                health.samples.get(name, ()),
                _sample(at, checks[name]),
                oldest=newest - windows.rtt_window_ms,
                limit=windows.rtt_samples,
            )
            for name in CHECKS
        },
    )


def _check(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a NIP-66 check that health needs; a negative RTT is not a measurement."""
    if check is None:
        return None
    rtt = check.get("rtt_ms")
    return {"ok": bool(check["ok"]), "rtt_ms": rtt if isinstance(rtt, int) and rtt >= 0 else None}


def _sample(at: int, check: dict[str, Any] | None) -> Sample | None:
    """Only passed checks time the relay's answer; a failure's RTT times the failure."""
    if check is None or not check["ok"] or check["rtt_ms"] is None:
        return None
    return (at, check["rtt_ms"])


def _count_hour(
    hours: tuple[Bucket, ...], hour: int, is_up: bool, oldest: int
) -> tuple[Bucket, ...]:
    buckets = {start: (probes, up) for start, probes, up in hours if start >= oldest}
    if hour >= oldest:
        probes, up = buckets.get(hour, (0, 0))
        buckets[hour] = (probes + 1, up + int(is_up))
    return tuple((start, *buckets[start]) for start in sorted(buckets))


def _keep_samples(
    samples: tuple[Sample, ...], new: Sample | None, oldest: int, limit: int
) -> tuple[Sample, ...]:
    merged = sorted([*samples, new] if new else samples)
    return tuple(sample for sample in merged if sample[0] > oldest)[-limit:] if limit else ()


def _hour(millis: int) -> int:
    return millis - millis % HOUR_MS


def _millis(moment: datetime | int) -> int:
    if isinstance(moment, int):
        return moment
    return (moment - _EPOCH) // timedelta(milliseconds=1)
