"""What the sink makes of one record, and of one batch, before any I/O."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from bigbrotr.codec import Codec
from bigbrotr.config import load_settings
from bigbrotr.errors import CodecError, ConfigError
from connectors.sink.events import EventsWriter
from connectors.sink.probes import ProbesWriter, canonical_json
from connectors.sink.relays import RelayRow, RelaysWriter, latest
from connectors.sink.sightings import SightingRow, SightingsWriter, merged
from connectors.sink.writer import Unwritable
from tests.support.events import make_events
from tests.support.sink_load import event_record, probe_record

T = datetime(2024, 5, 1, tzinfo=UTC)
codec = Codec()


def test_an_event_becomes_its_row() -> None:
    event = make_events(1, label="row")[0]
    value = codec.encode("Event", event_record(event, "wss://a.example", T))
    item = EventsWriter(codec).prepare(event.id.encode(), value)
    assert item.id == bytes.fromhex(event.id)
    assert item.row[4] == json.dumps([list(t) for t in event.tags], separators=(",", ":"))
    assert (item.relay_url, item.seen_at) == ("wss://a.example", T)


@pytest.mark.parametrize(("tags", "content"), [([["t", "a\x00"]], "x"), ([], "a\x00b")])
def test_an_event_with_u0000_is_unwritable_not_a_crash(tags: list[list[str]], content: str) -> None:
    from bigbrotr.nostr import sign_event
    from tests.support.events import TEST_KEYS

    event = sign_event(TEST_KEYS[0], 1_700_000_000, 1, tags, content)
    value = codec.encode("Event", event_record(event, "wss://a.example", T))
    with pytest.raises(Unwritable) as caught:
        EventsWriter(codec).prepare(None, value)
    assert caught.value.reason == "unwritable"
    assert caught.value.relay_url == "wss://a.example"


def test_a_record_that_is_not_avro_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        EventsWriter(codec).prepare(None, b"not avro")
    with pytest.raises(Unwritable):
        SightingsWriter(codec).prepare(None, None)


def test_sightings_of_a_batch_merge_to_first_and_last() -> None:
    eid = b"\x01" * 32
    rows = [SightingRow(eid, "wss://a", "wss://a", T + timedelta(seconds=s)) for s in (5, 1, 9, 3)]
    rows.append(SightingRow(eid, "external:x", None, T))
    assert sorted(merged(rows)) == [
        (eid, "external:x", T, T),
        (eid, "wss://a", T + timedelta(seconds=1), T + timedelta(seconds=9)),
    ]


def test_relays_batch_keeps_the_last_word_per_url() -> None:
    a = ("wss://a", "clearnet", "seed", T)
    a2 = ("wss://a", "clearnet", "event:x", T)
    b = ("wss://b", "clearnet", "seed", T)
    items = [
        RelayRow("wss://a", a),
        RelayRow("wss://b", b),
        RelayRow("wss://a", a2),
        RelayRow("wss://b", None),
    ]
    assert latest(items) == (["wss://b"], [a2])
    assert latest([RelayRow("wss://b", None), RelayRow("wss://b", b)]) == ([], [b])


def test_a_relay_tombstone_deletes() -> None:
    item = RelaysWriter(codec).prepare(b"wss://gone.example", None)
    assert item == RelayRow("wss://gone.example", None)


def test_a_probe_stores_documents_by_the_sha256_of_their_canonical_json() -> None:
    record = probe_record("wss://a.example", T, 1)
    record["nip11"] = '{"version": 1, "name": "relay"}'  # not canonical as sent
    record["checks"]["read"] = {"ok": False, "rtt_ms": None, "error": "timeout"}
    value = codec.encode("RelayProbe", record)
    rows = ProbesWriter(codec).prepare(b"wss://a.example", value)
    documents = {doc.kind: doc for doc in rows.documents}
    assert set(documents) == {"nip11", "dns", "geo"}
    nip11 = documents["nip11"]
    assert nip11.text == '{"name":"relay","version":1}'
    assert nip11.sha256 == hashlib.sha256(nip11.text.encode()).digest()
    assert rows.probe[:8] == ("wss://a.example", T, True, 11, False, None, None, None)
    assert json.loads(rows.probe[8]) == {"read": "timeout"}
    assert canonical_json({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'


def test_sink_settings_are_validated() -> None:
    assert load_settings().sink.topics == [
        "events",
        "sightings",
        "relays",
        "probes",
        "events-per-kind",
        "events-per-pubkey",
        "events-per-day",
        "events-per-relay",
        "relay-health",
    ]
    for bad in (
        {"batch_size": 0},
        {"topics": ["events", "events"]},
        {"topics": ["rejects"]},
        {"retry_base_s": 5, "retry_max_s": 1},
        {"shutdown_timeout_s": 30},
    ):
        with pytest.raises(ConfigError, match="sink"):
            load_settings(sink=bad)
