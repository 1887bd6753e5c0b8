"""What the sink makes of aggregate changelog records, before any I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bigbrotr.config import AGGREGATE_TABLES, load_settings
from connectors.sink.counts import CountRow, count_row, latest
from connectors.sink.health import health_row
from connectors.sink.writer import Unwritable
from streams.aggregates import HEALTH_TABLE
from streams.counts import COUNT_TABLES

HEALTH = {
    "relay_url": "wss://a.example",
    "last_probe_at": 1_700_006_460_000,
    "last_probe": {"open": {"ok": True, "rtt_ms": 41}, "read": None, "write": None},
    "up": True,
    "probes_24h": 3,
    "availability_24h": 2 / 3,
    "probes_7d": 3,
    "availability_7d": 2 / 3,
    "rtt_ms": {"open": {"p50": 41, "p95": 41, "samples": 1}},
    "hours": [[1_700_006_400_000, 3, 2]],
    "samples": {"open": [[1_700_006_460_000, 41]]},
}


def test_the_sink_names_the_changelogs_the_worker_writes() -> None:
    assert (*COUNT_TABLES, HEALTH_TABLE) == AGGREGATE_TABLES
    settings = load_settings(kafka={"topic_prefix": "t1."}, streams={"app_id": "w"})
    assert settings.sink_topic("events-per-day") == "t1.w-events-per-day-changelog"
    assert settings.sink_topic("events") == "t1.events"


def test_a_count_record_becomes_its_row() -> None:
    assert count_row("events-per-kind", b"1", b"42") == CountRow("events-per-kind", "1", 42)
    relay = count_row("events-per-relay", b"wss://a.example", b"7")
    assert (relay.relay_url, relay.count) == ("wss://a.example", 7)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"1", b"\xff\xfe", "bad_record"),
        (b"1", b"{", "bad_record"),
        (b"1", None, "bad_record"),
        (b"\xff", b"1", "bad_record"),
        (None, b"1", "bad_record"),
        (b"1", b"-1", "bad_shape"),
        (b"1", b"1.5", "bad_shape"),
        (b"1", b"true", "bad_shape"),
        (b"1", b'"3"', "bad_shape"),
        (b"1", b"9223372036854775808", "bad_shape"),
    ],
)
def test_a_count_record_that_is_not_one_is_refused(
    key: bytes | None, value: bytes | None, reason: str
) -> None:
    with pytest.raises(Unwritable) as caught:
        count_row("events-per-kind", key, value)
    assert caught.value.reason == reason


def test_the_last_record_of_a_key_in_a_batch_wins() -> None:
    rows = [
        CountRow("events-per-kind", "1", 5),
        CountRow("events-per-day", "1", 9),
        CountRow("events-per-kind", "7", 1),
        CountRow("events-per-kind", "1", 4),
    ]
    assert sorted(latest(rows)) == [
        ("events-per-day", "1", 9),
        ("events-per-kind", "1", 4),
        ("events-per-kind", "7", 1),
    ]


def test_a_health_record_becomes_its_row() -> None:
    item = health_row(b"wss://a.example", json.dumps(HEALTH).encode())
    url, at, up, day, week, document = item.row
    assert (url, at, up, day, week) == (
        "wss://a.example",
        datetime(2023, 11, 15, 0, 1, tzinfo=UTC),
        True,
        2 / 3,
        2 / 3,
    )
    assert json.loads(document) == HEALTH
    empty = health_row(b"wss://a.example", json.dumps({**HEALTH, "availability_7d": None}).encode())
    assert empty.row[4] is None


@pytest.mark.parametrize(
    "change",
    [
        {"relay_url": "wss://b.example"},
        {"up": 1},
        {"last_probe_at": "now"},
        {"last_probe_at": 10**20},
        {"availability_24h": 1.5},
        {"availability_7d": "high"},
    ],
)
def test_a_health_document_of_the_wrong_shape_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(Unwritable) as caught:
        health_row(b"wss://a.example", json.dumps({**HEALTH, **change}).encode())
    assert (caught.value.reason, caught.value.relay_url) == ("bad_shape", "wss://a.example")


def test_a_health_value_that_is_not_a_json_object_is_refused() -> None:
    for value, reason in ((b"[1]", "bad_shape"), (b"not json", "bad_record"), (None, "bad_record")):
        with pytest.raises(Unwritable) as caught:
            health_row(b"wss://a.example", value)
        assert caught.value.reason == reason
