"""What events add to the count tables, and the increments between the two count steps."""

from __future__ import annotations

import pytest

from bigbrotr.nostr import Event
from streams.counts import (
    PER_DAY,
    PER_KIND,
    PER_PUBKEY,
    PER_RELAY,
    Increment,
    IncrementTally,
    event_counts,
    relay_key,
    utc_day,
)

PUBKEY = "ab" * 32


def test_an_event_counts_per_kind_author_and_utc_day() -> None:
    event = Event("cd" * 32, PUBKEY, 1_711_497_599, 30_023, (), "", "00" * 64)
    assert event_counts(event) == [
        Increment(PER_KIND, "30023"),
        Increment(PER_PUBKEY, PUBKEY),
        Increment(PER_DAY, "2024-03-26"),
    ]


def test_a_time_no_calendar_holds_has_no_day() -> None:
    assert utc_day(0) == "1970-01-01"
    assert utc_day(2**63 - 1) is None
    event = Event("cd" * 32, PUBKEY, 2**63 - 1, 1, (), "", "00" * 64)
    assert [increment.table for increment in event_counts(event)] == [PER_KIND, PER_PUBKEY]


def test_increments_round_trip_and_are_keyed_by_the_count() -> None:
    increment = Increment(PER_RELAY, "wss://relay.example")
    assert Increment.from_bytes(increment.to_bytes()) == increment
    assert increment.message_key() == b"events-per-relay:wss://relay.example"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff",
        b"[1, 2]",
        b'"text"',
        b"[" * 100_000,
        b'{"table": "events-per-kind"}',
        b'{"table": "events-per-kind", "key": "1", "x": 2}',
        b'{"table": "unknown", "key": "1"}',
        b'{"table": "events-per-kind", "key": 1}',
        b'{"table": ["events-per-kind"], "key": "1"}',
    ],
)
def test_anything_else_on_the_increments_topic_is_refused(value: bytes) -> None:
    assert Increment.from_bytes(value) is None


def test_an_event_counts_once_per_relay() -> None:
    assert relay_key("cd" * 32, "wss://a.example") == f"{'cd' * 32}|wss://a.example"


def test_a_batch_sums_its_increments_per_partition_table_and_key() -> None:
    tally = IncrementTally()
    tally.add(0, [Increment(PER_KIND, "1"), Increment(PER_RELAY, "wss://a.example")])
    tally.add(0, [Increment(PER_KIND, "1")])
    tally.add(1, [Increment(PER_KIND, "1")])
    assert sorted(tally.drain(), key=repr) == sorted(
        [
            (0, Increment(PER_KIND, "1", by=2)),
            (0, Increment(PER_RELAY, "wss://a.example")),
            (1, Increment(PER_KIND, "1")),
        ],
        key=repr,
    )
    assert tally.drain() == []


def test_an_increment_without_a_count_adds_one_and_a_bad_count_is_refused() -> None:
    assert Increment.from_bytes(b'{"table":"events-per-kind","key":"1"}') == Increment(
        PER_KIND, "1"
    )
    for by in ("0", "-1", '"2"', "1.5", "true"):
        value = f'{{"table":"events-per-kind","key":"1","by":{by}}}'.encode()
        assert Increment.from_bytes(value) is None
