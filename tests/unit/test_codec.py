"""Codec: every record round-trips, plain Avro readers decode our messages, garbage is refused."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from bigbrotr.avro.schemas import default_schemas_dir
from bigbrotr.codec import Codec
from bigbrotr.errors import CodecError

SCHEMAS = default_schemas_dir()
REAL_EVENTS = Path(__file__).parents[1] / "data" / "real_events.jsonl"
SEEN = datetime(2024, 3, 26, 16, 5, 25, 123000, tzinfo=UTC)
RAW_LINE = REAL_EVENTS.read_bytes().splitlines()[1]
EVENT = json.loads(RAW_LINE)

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "RelayDiscovered": [
        {
            "url": "wss://relay.damus.io",
            "network": "clearnet",
            "source": "seed",
            "discovered_at": SEEN,
        },
        {
            "url": "ws://oxtrdevav64z64yb7x6rjg4ntzqjhedm5b5zjqulugknhzr46ny2qbad.onion",
            "network": "tor",
            "source": f"event:{EVENT['id']}",
            "discovered_at": datetime(1970, 1, 1, tzinfo=UTC),
        },
    ],
    "RawEvent": [
        {"relay_url": "wss://nos.lol", "seen_at": SEEN, "raw": RAW_LINE, "source": "sync"},
        {"relay_url": None, "seen_at": SEEN, "raw": b"\xff\xfe{\x00", "source": "external:x"},
        {"relay_url": "wss://r\u00e9lay.example", "seen_at": SEEN, "raw": b"", "source": "live"},
    ],
    "Event": [
        {**EVENT, "first_seen_relay": "wss://nos.lol", "first_seen_at": SEEN},
        {
            **EVENT,
            "tags": [],
            "content": "gm \U0001f919 \u65e5\u672c\u8a9e \u0000 nul",
            "kind": 65535,
            "created_at": 0,
            "first_seen_relay": None,
            "first_seen_at": SEEN,
        },
        {**EVENT, "tags": [[], ["e"], ["t", ""]], "first_seen_relay": None, "first_seen_at": SEEN},
    ],
    "Sighting": [
        {"event_id": EVENT["id"], "relay_url": "wss://nos.lol", "seen_at": SEEN, "source": "live"},
        {"event_id": EVENT["id"], "relay_url": None, "seen_at": SEEN, "source": "external:t"},
    ],
    "Reject": [
        {
            "reason": "bad_sig",
            "detail": "signature does not verify",
            "stage": "validator",
            "relay_url": "wss://nos.lol",
            "seen_at": SEEN,
            "source": "sync",
            "original": RAW_LINE,
        },
        {
            "reason": "bad_utf8",
            "detail": "invalid start byte at 0",
            "stage": "validator",
            "relay_url": None,
            "seen_at": SEEN,
            "source": "external:x",
            "original": b"\xff\xfe",
        },
    ],
    "RelayProbe": [
        {
            "relay_url": "wss://nos.lol",
            "network": "clearnet",
            "probed_at": SEEN,
            "nip11": '{"name":"nos.lol","supported_nips":[1,11],"description":"\u2764"}',
            "nip11_error": None,
            "checks": {
                "open": {"ok": True, "rtt_ms": 87, "error": None},
                "read": {"ok": True, "rtt_ms": 140, "error": None},
                "write": {"ok": False, "rtt_ms": None, "error": "blocked: paid relay"},
            },
            "dns": {"addresses": ["104.21.2.1", "2606:4700::6812:201"], "error": None},
            "tls": {
                "subject": "CN=nos.lol",
                "issuer": "CN=E5,O=Let's Encrypt,C=US",
                "not_before": datetime(2024, 1, 1, tzinfo=UTC),
                "not_after": datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC),
                "subject_alt_names": ["nos.lol", "*.nos.lol"],
                "fingerprint_sha256": "ab" * 32,
                "error": None,
            },
            "geo": {"country": "DE", "city": "D\u00fcsseldorf"},
            "errors": {},
        },
        {
            "relay_url": "ws://relay.i2p",
            "network": "i2p",
            "probed_at": SEEN,
            "nip11": None,
            "nip11_error": "timed out after 10 s",
            "checks": {"open": None, "read": None, "write": None},
            "dns": None,
            "tls": None,
            "geo": None,
            "errors": {"open": "proxy refused the connection"},
        },
        {
            "relay_url": "wss://expired.example",
            "network": "clearnet",
            "probed_at": SEEN,
            "nip11": None,
            "nip11_error": None,
            "checks": {
                "open": {"ok": False, "rtt_ms": None, "error": "TLS"},
                "read": None,
                "write": None,
            },
            "dns": {"addresses": [], "error": "NXDOMAIN"},
            "tls": {
                "subject": None,
                "issuer": None,
                "not_before": None,
                "not_after": None,
                "subject_alt_names": [],
                "fingerprint_sha256": None,
                "error": "certificate has expired",
            },
            "geo": {},
            "errors": {},
        },
    ],
    "SyncCursor": [
        {
            "relay_url": "wss://nos.lol",
            "updated_at": SEEN,
            "method": "bisection",
            "complete_since": 1_600_000_000,
            "complete_until": 1_711_469_125,
            "gaps": [{"since": 1_650_000_000, "until": 1_650_000_099, "reason": "timeout"}],
        },
        {
            "relay_url": "wss://new.example",
            "updated_at": SEEN,
            "method": "negentropy",
            "complete_since": None,
            "complete_until": None,
            "gaps": [],
        },
    ],
    "RelayCandidate": [
        {
            "url": "wss://relay.damus.io",
            "network": "clearnet",
            "source": "seed",
            "discovered_at": SEEN,
            "status": "pending",
            "attempts": 2,
            "updated_at": SEEN,
            "next_attempt_at": SEEN,
            "last_error": "connect_failed: ConnectionRefusedError",
        },
        {
            "url": "wss://nos.lol",
            "network": "clearnet",
            "source": f"event:{EVENT['id']}",
            "discovered_at": SEEN,
            "status": "accepted",
            "attempts": 0,
            "updated_at": SEEN,
            "next_attempt_at": None,
            "last_error": None,
        },
    ],
}
CASES = [(name, value) for name, values in SAMPLES.items() for value in values]


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def test_samples_cover_every_record(codec: Codec) -> None:
    assert sorted(codec.records) == sorted(SAMPLES)


@pytest.mark.parametrize(("name", "value"), CASES)
def test_round_trip(codec: Codec, name: str, value: dict[str, Any]) -> None:
    assert codec.decode(name, codec.encode(name, value)) == value


@pytest.mark.parametrize(("name", "value"), CASES)
def test_skipping_validation_writes_the_same_bytes(
    codec: Codec, name: str, value: dict[str, Any]
) -> None:
    assert codec.encode(name, value, validated=False) == codec.encode(name, value)


def test_timestamps_accept_integer_milliseconds(codec: Codec) -> None:
    value = {"relay_url": None, "seen_at": 1_711_469_125_123, "raw": b"{}", "source": "sync"}
    assert codec.decode("RawEvent", codec.encode("RawEvent", value))["seen_at"] == SEEN


def test_fields_with_defaults_may_be_left_out(codec: Codec) -> None:
    decoded = codec.decode(
        "SyncCursor", codec.encode("SyncCursor", {"relay_url": "wss://a.b", "updated_at": SEEN})
    )
    assert decoded == {
        "relay_url": "wss://a.b",
        "updated_at": SEEN,
        "method": "bisection",
        "complete_since": None,
        "complete_until": None,
        "gaps": [],
    }


@pytest.mark.parametrize(("name", "value"), CASES)
def test_plain_fastavro_decodes_with_only_the_avsc_file(
    codec: Codec, tmp_path: Path, name: str, value: dict[str, Any]
) -> None:
    alone = tmp_path / f"{name}.avsc"
    shutil.copy(SCHEMAS / f"{name}.avsc", alone)
    schema = load_schema(str(alone))
    message = codec.encode(name, value)

    assert message[:2] == b"\xc3\x01"
    assert message[2:10] == bytes.fromhex(
        fingerprint(to_parsing_canonical_form(json.loads(alone.read_text())), "CRC-64-AVRO")
    )
    assert fastavro.schemaless_reader(io.BytesIO(message[10:]), schema) == value


def test_fingerprint_is_the_little_endian_rabin_fingerprint() -> None:
    # Avro's own test vector: SchemaNormalization.parsingFingerprint64 of "null" is
    # 7195948357588979594; single-object encoding writes it little-endian.
    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == (7195948357588979594).to_bytes(
        8, "little"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b'{"id": 1}', "not an Avro single-object"),
        (b"\xc3\x01\x00\x01", "cut inside its single-object header"),
        (b"\xc3\x01" + bytes(8) + b"\x00", "unknown schema"),
        (b"\x00\x00\x00", "cut inside its Confluent header"),
        (b"\x00\x00\x00\x00\x07\x02", "no schema registry is configured"),
    ],
)
def test_garbage_is_refused(codec: Codec, data: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        codec.decode("RawEvent", data)


def test_every_truncation_is_refused(codec: Codec) -> None:
    message = codec.encode("Event", SAMPLES["Event"][0])
    for cut in range(len(message)):
        with pytest.raises(CodecError):
            codec.decode("Event", message[:cut])


def test_trailing_bytes_are_refused(codec: Codec) -> None:
    message = codec.encode("Sighting", SAMPLES["Sighting"][0])
    with pytest.raises(CodecError, match="1 bytes left after the record"):
        codec.decode("Sighting", message + b"\x00")


def test_a_message_of_another_record_is_refused(codec: Codec) -> None:
    message = codec.encode("Sighting", SAMPLES["Sighting"][0])
    with pytest.raises(CodecError, match="holds a Sighting, expected Event"):
        codec.decode("Event", message)


def test_invalid_utf8_in_a_string_is_refused(codec: Codec) -> None:
    message = codec.encode("Sighting", {**SAMPLES["Sighting"][0], "source": "ab"})
    corrupt = message[:-2] + b"\xff\xfe"
    with pytest.raises(CodecError, match="corrupt or truncated"):
        codec.decode("Sighting", corrupt)


def test_unknown_record_name(codec: Codec) -> None:
    with pytest.raises(CodecError, match="unknown record 'RawEvnt'; known: Event, RawEvent"):
        codec.encode("RawEvnt", {})
    with pytest.raises(CodecError, match="unknown record"):
        codec.decode("RawEvnt", b"")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": 2**40}, r"Event\.kind got int 1099511627776, expected int"),
        ({"kind": 1.5}, r"Event\.kind got float 1\.5, expected int"),
        ({"kind": True}, r"Event\.kind got bool True, expected int"),
        ({"tags": "e"}, r"Event\.tags got str 'e', expected array"),
        ({"tags": [["e", 1]]}, r"Event\.tags got int 1, expected string"),
        ({"first_seen_relay": 5}, r"Event\.first_seen_relay got int 5, expected null or string"),
        ({"first_seen_at": "today"}, r"Event\.first_seen_at got str 'today'"),
        ({"sig": None}, r"Event\.sig got nothing, expected string"),
        ({"colour": "red"}, r"more fields than the schema specifies: colour"),
        ({"content": "\ud800"}, r"surrogates not allowed"),
    ],
)
def test_values_that_do_not_fit_are_refused(
    codec: Codec, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(CodecError, match=r"cannot encode Event: .*" + message):
        codec.encode("Event", {**SAMPLES["Event"][0], **change})


@pytest.mark.parametrize("value", [None, [1], "{}"])
def test_a_value_that_is_not_a_record_is_refused(codec: Codec, value: Any) -> None:
    with pytest.raises(CodecError, match=r"cannot encode RawEvent: value got .*, expected record"):
        codec.encode("RawEvent", value)


def test_missing_field_without_default_is_refused(codec: Codec) -> None:
    value = dict(SAMPLES["RawEvent"][0])
    del value["source"]
    with pytest.raises(CodecError, match=r"RawEvent\.source got nothing, expected string"):
        codec.encode("RawEvent", value)


def test_bad_enum_symbol_lists_the_symbols(codec: Codec) -> None:
    with pytest.raises(CodecError, match="expected one of clearnet, tor, i2p, loki"):
        codec.encode("RelayDiscovered", {**SAMPLES["RelayDiscovered"][0], "network": "web"})


def test_nested_record_errors_name_the_nested_field(codec: Codec) -> None:
    probe = SAMPLES["RelayProbe"][0]
    checks = {**probe["checks"], "open": {"ok": "yes"}}
    with pytest.raises(CodecError, match=r"NipCheck\.ok got str 'yes', expected boolean"):
        codec.encode("RelayProbe", {**probe, "checks": checks})


def test_long_values_are_shortened_in_errors(codec: Codec) -> None:
    with pytest.raises(CodecError) as caught:
        codec.encode("Event", {**SAMPLES["Event"][0], "content": b"x" * 100_000})
    assert len(str(caught.value)) < 400


timestamps = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


@given(
    relay_url=st.none() | st.text(),
    seen_at=timestamps,
    raw=st.binary(max_size=4096),
    source=st.text(),
)
def test_raw_event_keeps_any_bytes(
    codec: Codec, relay_url: str | None, seen_at: datetime, raw: bytes, source: str
) -> None:
    value = {"relay_url": relay_url, "seen_at": seen_at, "raw": raw, "source": source}
    assert codec.decode("RawEvent", codec.encode("RawEvent", value)) == value


@given(body=st.binary(max_size=256))
def test_any_body_decodes_or_raises_codec_error(codec: Codec, body: bytes) -> None:
    message = codec.encode("RawEvent", SAMPLES["RawEvent"][0])[:10] + body
    try:
        value = codec.decode("RawEvent", message)
    except CodecError:
        return
    assert set(value) == {"relay_url", "seen_at", "raw", "source"}
