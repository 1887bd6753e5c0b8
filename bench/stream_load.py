"""The raw load for the stream benchmark: real-shaped events, each sighted from two relays.

tests/data/real_events.jsonl holds 1,000 real events. Copy 0 of each is the original text; further
copies re-sign the same kind, tags and content with the test keys at a shifted `created_at`, so
the load has real sizes, unicode and tags but as many distinct ids as asked for. Each event is
then written to `events.raw` once per relay, relay after relay (as two syncs would), so half of
the records carry an id already seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import event_to_json, sign_event
from tests.support.events import TEST_KEYS

REAL_EVENTS = Path(__file__).parents[1] / "tests" / "data" / "real_events.jsonl"
RELAYS = ("wss://a.example", "wss://b.example")
SEEN_AT_MS = 1_700_000_000_000


@dataclass(frozen=True)
class RawLoad:
    """Records for `events.raw` and the outputs a correct worker makes of them."""

    records: list[tuple[bytes, bytes]]  # (key, RawEvent value)
    texts: list[bytes]  # the event JSON of each record, for the ceiling
    ids: frozenset[str]  # distinct valid ids: one `events` record each
    real: int  # how many distinct events are real_events.jsonl originals

    @property
    def sightings(self) -> int:
        """Every record is a valid, distinct (event, relay, seen_at) fact."""
        return len(self.records)


def _texts(distinct: int) -> list[bytes]:
    originals = REAL_EVENTS.read_bytes().splitlines()
    texts = originals[:distinct]
    ids = {json.loads(text)["id"] for text in texts}
    for index in range(len(texts), distinct):
        event = json.loads(originals[index % len(originals)])
        created_at = event["created_at"] + index // len(originals)
        while True:  # originals by different authors may share kind, tags, content and time
            signed = sign_event(
                TEST_KEYS[index % len(TEST_KEYS)],
                created_at,
                event["kind"],
                event["tags"],
                event["content"],
            )
            if signed.id not in ids:
                break
            created_at += 1
        ids.add(signed.id)
        texts.append(event_to_json(signed).encode())
    return texts


def build_load(records: int, codec: Codec) -> RawLoad:
    """`records` RawEvent records (rounded down to even): records/2 distinct events x 2 relays."""
    texts = _texts(records // len(RELAYS))
    ids = [str(json.loads(text)["id"]) for text in texts]
    pairs: list[tuple[bytes, bytes]] = []
    for relay in RELAYS:
        for index, (event_id, text) in enumerate(zip(ids, texts, strict=True)):
            seen_at = datetime.fromtimestamp((SEEN_AT_MS + index) / 1000, UTC)
            value = {"relay_url": relay, "seen_at": seen_at, "raw": text, "source": "sync"}
            pairs.append((event_id.encode(), codec.encode("RawEvent", value)))
    real = min(len(texts), len(REAL_EVENTS.read_bytes().splitlines()))
    return RawLoad(pairs, texts * len(RELAYS), frozenset(ids), real)


def fill(settings: Settings, load: RawLoad) -> None:
    """Write the whole load to `events.raw` before any worker starts."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20, "acks": "all"}
    )
    topic = settings.kafka.topic("events.raw")
    for key, value in load.records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60) != 0:
        raise SystemExit(f"could not write the load to {topic}")
