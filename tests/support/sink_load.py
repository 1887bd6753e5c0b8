"""Records for the sink's topics, produced straight to Kafka (no worker needed), and what the
database must hold once they are written."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import event_to_dict, sign_event
from tests.support.events import TEST_KEYS, make_events

T0 = datetime(2024, 5, 1, tzinfo=UTC)
RELAYS = tuple(f"wss://relay{n}.example" for n in range(8))
codec = Codec()


@dataclass
class SinkLoad:
    """What was produced, and what the tables and `rejects` must end up with."""

    event_ids: set[str] = field(default_factory=set)
    sightings: dict[tuple[str, str], tuple[datetime, datetime]] = field(default_factory=dict)
    relays: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: set[tuple[str, datetime]] = field(default_factory=set)
    poison: set[bytes] = field(default_factory=set)
    records: int = 0


def event_record(event: Any, relay: str, seen_at: datetime) -> dict[str, Any]:
    return {**event_to_dict(event), "first_seen_relay": relay, "first_seen_at": seen_at}


def probe_record(relay: str, probed_at: datetime, n: int) -> dict[str, Any]:
    ok = {"ok": True, "rtt_ms": 10 + n % 7, "error": None}
    return {
        "relay_url": relay,
        "network": "clearnet",
        "probed_at": probed_at,
        "nip11": json.dumps({"name": "relay", "software": "test", "version": n % 3}),
        "nip11_error": None,
        "checks": {"open": ok, "read": ok, "write": None},
        "dns": {"addresses": ["192.0.2.1"], "error": None},
        "tls": None,
        "geo": {"country": "IS"},
        "errors": {},
    }


class Loader:
    """Produces to the sink's topics with librdkafka; `load` tracks the expected end state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = Producer(
            {"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20}
        )
        self.load = SinkLoad()

    def send(self, topic: str, key: str | None, value: bytes | None) -> None:
        self.producer.produce(
            self.settings.kafka.topic(topic), key=key.encode() if key else None, value=value
        )
        self.producer.poll(0)
        self.load.records += 1

    def events(self, count: int, label: str, *, sightings_per_event: int = 2) -> None:
        for index, event in enumerate(make_events(count, label=label)):
            relay = RELAYS[index % len(RELAYS)]
            seen = T0 + timedelta(seconds=index)
            self.send("events", event.id, codec.encode("Event", event_record(event, relay, seen)))
            self.load.event_ids.add(event.id)
            for n in range(sightings_per_event):
                where = RELAYS[(index + n) % len(RELAYS)]
                at = seen + timedelta(milliseconds=n * 10)
                record = {"event_id": event.id, "relay_url": where, "seen_at": at, "source": "sync"}
                self.send("sightings", event.id, codec.encode("Sighting", record))
                span = self.load.sightings.get((event.id, where), (at, at))
                self.load.sightings[(event.id, where)] = (min(span[0], at), max(span[1], at))

    def relays(self) -> None:
        for n, url in enumerate(RELAYS):
            for version in range(2):  # the latest record of a URL wins
                record = {
                    "url": url,
                    "network": "clearnet",
                    "source": f"seed v{version}",
                    "discovered_at": T0 + timedelta(minutes=n, seconds=version),
                }
                self.send("relays", url, codec.encode("RelayDiscovered", record))
                self.load.relays[url] = record

    def probes(self, rounds: int) -> None:
        for n in range(rounds):
            for url in RELAYS:
                at = T0 + timedelta(hours=n)
                self.send("probes", url, codec.encode("RelayProbe", probe_record(url, at, n)))
                self.load.probes.add((url, at))

    def poison(self) -> None:
        """Records that can never be stored: not Avro, and an event PostgreSQL cannot hold."""
        garbage = b"\xc3\x01 certainly not an Event"
        self.send("events", "garbage", garbage)
        nul = sign_event(TEST_KEYS[0], 1_700_000_000, 1, [["t", "a\x00b"]], "nul \x00 inside")
        value = codec.encode("Event", event_record(nul, RELAYS[0], T0))
        self.send("events", nul.id, value)
        self.load.poison |= {garbage, value}

    def flush(self) -> SinkLoad:
        remaining = self.producer.flush(30)
        assert remaining == 0, f"{remaining} records not delivered"
        return self.load
