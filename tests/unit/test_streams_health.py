"""Relay health math: exact figures on hand-made probe histories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from streams.health import HOUR_MS, HealthWindows, apply_probe, percentile

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS  # an hour boundary
RELAY = "wss://relay.example"
WINDOWS = HealthWindows(rtt_window_ms=24 * HOUR_MS, rtt_samples=10, percentiles=(50, 95))


def probe(at_ms: int, up: bool = True, rtt: int | None = 40, **checks: Any) -> dict[str, Any]:
    return {
        "relay_url": RELAY,
        "probed_at": datetime.fromtimestamp(at_ms / 1000, UTC),
        "checks": {
            "open": {"ok": up, "rtt_ms": rtt if up else None, "error": None if up else "refused"},
            "read": None,
            "write": None,
            **checks,
        },
    }


def replay(probes: list[dict[str, Any]], windows: HealthWindows = WINDOWS) -> dict[str, Any]:
    """Apply probes in order, through JSON as the table's changelog and store do."""
    value: dict[str, Any] | None = None
    for record in probes:
        value = json.loads(json.dumps(apply_probe(value, record, windows)))
    assert value is not None
    return value


def test_percentile_is_nearest_rank() -> None:
    values = list(range(100, 0, -1))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 100) == 100
    assert percentile([7], 1) == 7
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([], 50) is None


def test_first_probe() -> None:
    value = replay([probe(T0 + 5, rtt=33)])
    assert value["relay_url"] == RELAY
    assert value["last_probe_at"] == T0 + 5
    assert value["up"] is True
    assert value["last_probe"]["open"] == {"ok": True, "rtt_ms": 33}
    assert value["last_probe"]["read"] is None
    assert (value["probes_24h"], value["availability_24h"]) == (1, 1.0)
    assert (value["probes_7d"], value["availability_7d"]) == (1, 1.0)
    assert value["rtt_ms"]["open"] == {"p50": 33, "p95": 33, "samples": 1}
    assert value["rtt_ms"]["read"] == {"p50": None, "p95": None, "samples": 0}


def test_availability_over_a_day_and_a_week_in_bounded_state() -> None:
    # Ten days of hourly probes, down every fourth hour.
    hours = 240
    value = replay([probe(T0 + h * HOUR_MS + 60_000, up=h % 4 != 0) for h in range(hours)])
    assert value["probes_24h"] == 24
    assert value["availability_24h"] == 18 / 24
    assert value["probes_7d"] == 168
    assert value["availability_7d"] == 126 / 168
    assert len(value["hours"]) == 168
    assert value["up"] is ((hours - 1) % 4 != 0)


def test_several_probes_in_one_hour_share_a_bucket() -> None:
    value = replay([probe(T0 + minute * 60_000, up=minute % 2 == 0) for minute in range(60)])
    assert value["hours"] == [[T0, 60, 30]]
    assert value["availability_24h"] == 0.5


def test_rtt_percentiles_over_the_newest_samples_only() -> None:
    probes = [probe(T0 + n * 60_000, rtt=1000 + n) for n in range(50)]
    value = replay(probes)
    kept = list(range(1040, 1050))
    assert [rtt for _, rtt in value["samples"]["open"]] == kept
    assert value["rtt_ms"]["open"] == {"p50": 1044, "p95": 1049, "samples": 10}


def test_rtt_samples_older_than_the_window_are_dropped() -> None:
    old = probe(T0, rtt=5000)
    new = probe(T0 + 25 * HOUR_MS, rtt=20)
    value = replay([old, new])
    assert value["rtt_ms"]["open"] == {"p50": 20, "p95": 20, "samples": 1}
    assert value["probes_7d"] == 2


def test_failed_checks_and_negative_rtts_are_not_samples() -> None:
    read_failed = {"ok": False, "rtt_ms": 9000, "error": "timeout"}
    write_ok = {"ok": True, "rtt_ms": 70, "error": None}
    value = replay([probe(T0, rtt=-3, read=read_failed, write=write_ok)])
    assert value["rtt_ms"]["open"]["samples"] == 0
    assert value["last_probe"]["open"] == {"ok": True, "rtt_ms": None}
    assert value["rtt_ms"]["read"]["samples"] == 0
    assert value["rtt_ms"]["write"] == {"p50": 70, "p95": 70, "samples": 1}


def test_a_probe_without_an_open_check_counts_as_down() -> None:
    record = probe(T0)
    record["checks"]["open"] = None
    value = replay([record])
    assert value["up"] is False
    assert value["availability_24h"] == 0.0


def test_a_late_probe_counts_where_it_falls_but_is_not_the_last_probe() -> None:
    value = replay([probe(T0 + 3 * HOUR_MS, rtt=10), probe(T0 + HOUR_MS, up=False)])
    assert value["last_probe_at"] == T0 + 3 * HOUR_MS
    assert value["up"] is True
    assert value["hours"] == [[T0 + HOUR_MS, 1, 0], [T0 + 3 * HOUR_MS, 1, 1]]
    assert value["availability_24h"] == 0.5


def test_a_probe_older_than_a_week_is_outside_every_window() -> None:
    value = replay([probe(T0 + 8 * 24 * HOUR_MS), probe(T0, up=False)])
    assert value["hours"] == [[T0 + 8 * 24 * HOUR_MS, 1, 1]]
    assert value["availability_7d"] == 1.0


def test_health_windows_follow_the_settings() -> None:
    from bigbrotr.config import StreamSettings

    windows = HealthWindows.from_settings(
        StreamSettings(health_rtt_window_s=600, health_rtt_samples=5, health_percentiles=[90])
    )
    assert windows == HealthWindows(rtt_window_ms=600_000, rtt_samples=5, percentiles=(90,))


def test_the_value_holds_exactly_the_documented_fields() -> None:
    """The README documents these for readers of the changelog; nothing else is written."""
    value = replay([probe(T0)])
    assert list(value) == [
        "relay_url",
        "last_probe_at",
        "last_probe",
        "up",
        "probes_24h",
        "availability_24h",
        "probes_7d",
        "availability_7d",
        "rtt_ms",
        "hours",
        "samples",
    ]
    assert set(value["rtt_ms"]) == set(value["samples"]) == {"open", "read", "write"}
