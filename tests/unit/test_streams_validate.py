"""The validator's steps, alone and composed: each failure maps to its documented reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bigbrotr.codec import Codec
from bigbrotr.nostr import InvalidEvent, RejectReason, event_to_json, sign_event
from streams.records import (
    claimed_id,
    event_record,
    external_raw_record,
    reject_record,
    sighting_key,
    sighting_record,
    undecodable_record,
)
from streams.validate import Limits, validate

SECRET = "22" * 32
NOW = 1_800_000_000
REAL = (Path(__file__).parents[1] / "data" / "real_events.jsonl").read_bytes().splitlines()


def _signed(content: str = "hello", created_at: int = NOW - 60, tags: int = 1) -> bytes:
    event = sign_event(SECRET, created_at, 1, [["t", str(n)] for n in range(tags)], content)
    return event_to_json(event).encode()


def test_real_events_pass() -> None:
    for line in REAL:
        assert validate(line, Limits(), NOW).id == json.loads(line)["id"]


@pytest.mark.parametrize(
    ("raw", "limits", "reason"),
    [
        (b"{", Limits(), RejectReason.BAD_JSON),
        (b'{"id": "\xff"}', Limits(), RejectReason.BAD_UTF8),
        (b'{"id": 1}', Limits(), RejectReason.BAD_SHAPE),
        (_signed(created_at=NOW + 3600), Limits(max_future_skew_s=900), RejectReason.FUTURE),
        (_signed(content="x" * 2000), Limits(max_content_bytes=1024), RejectReason.TOO_LARGE),
        (_signed(tags=30), Limits(max_tags=10), RejectReason.TOO_LARGE),
        (_signed(content="y" * 5000), Limits(max_event_bytes=4096), RejectReason.TOO_LARGE),
        (_signed().replace(b"hello", b"hellO"), Limits(), RejectReason.BAD_ID),
    ],
)
def test_each_failure_has_its_reason(raw: bytes, limits: Limits, reason: RejectReason) -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate(raw, limits, NOW)
    assert caught.value.reason == reason


def test_bad_signature_is_found_after_the_cheap_checks() -> None:
    event = json.loads(_signed())
    forged = json.dumps({**event, "sig": "ab" * 64}).encode()
    with pytest.raises(InvalidEvent) as caught:
        validate(forged, Limits(), NOW)
    assert caught.value.reason == RejectReason.BAD_SIG


def test_future_within_skew_is_accepted() -> None:
    assert validate(_signed(created_at=NOW + 600), Limits(max_future_skew_s=900), NOW)


def test_records_fit_their_avro_schemas() -> None:
    codec = Codec()
    seen_at = datetime(2026, 1, 1, tzinfo=UTC)
    event = validate(REAL[0], Limits(), NOW)
    raw = {"relay_url": "wss://r.example", "seen_at": seen_at, "raw": REAL[0], "source": "sync"}
    error = InvalidEvent(RejectReason.BAD_SIG, "nope")
    for name, record in [
        ("Event", event_record(event, "wss://r.example", seen_at)),
        ("Sighting", sighting_record(event.id, raw)),
        ("Reject", reject_record(error, raw)),
        ("Reject", undecodable_record("garbage", b"\x00", seen_at, "t")),
        ("RawEvent", external_raw_record(REAL[0], "other.topic", seen_at)),
    ]:
        assert codec.decode(name, codec.encode(name, record)) == record


def test_claimed_id_reads_only_a_plausible_id() -> None:
    assert claimed_id(REAL[0]) == json.loads(REAL[0])["id"].encode()
    assert claimed_id(b"not json") == b""
    assert claimed_id(b'{"id": "short"}') == b""
    assert claimed_id(b"[1, 2]") == b""


def test_sighting_key_separates_relays_and_times() -> None:
    base = {"relay_url": "wss://a", "seen_at": datetime(2026, 1, 1, tzinfo=UTC)}
    keys = {
        sighting_key("e", base),
        sighting_key("e", {**base, "relay_url": "wss://b"}),
        sighting_key("e", {**base, "seen_at": datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)}),
        sighting_key("e", {**base, "relay_url": None}),
    }
    assert len(keys) == 4
    assert sighting_key("e", dict(base)) == sighting_key("e", base)
