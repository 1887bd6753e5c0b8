"""Aggregate tables kept current from the stream; their changelog topics are the public result.

Counts per kind, pubkey, day and relay come from the validator itself (`EventCounts`): it knows
when an event is new (its first-seen claim) and when a sighting is, so it hands their increments
over in the same batch instead of the worker reading `events` and `sightings` back and decoding
every record again. Health per relay comes from `probes`. Every table is a `RecordTable` in
RocksDB with a compacted changelog topic named `<app id>-<table>-changelog`: UTF-8 text keys,
JSON values (README, "Aggregate tables").

Nothing is counted twice. An event counts once, when its first-seen claim is made; a relay counts
an event once, when the (event, relay) claim in `aggregate-relay-counted` is made. A claim, its
increments and the count they add commit with the offsets of the records that made them
(`streams.transactions`): a record read again after a crash finds no trace of its aborted
transaction and is counted as if new, and a committed claim is never undone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError
from bigbrotr.nostr import Event
from streams.batches import Batch
from streams.counts import (
    COUNT_TABLES,
    PER_RELAY,
    Increment,
    IncrementTally,
    event_counts,
    relay_key,
)
from streams.health import HealthWindows, apply_probe
from streams.records import record_id, undecodable_record
from streams.transactions import RecordTable, StreamApp

HEALTH_TABLE = "relay-health"
INCREMENTS_TOPIC = "aggregate-increments"
STAGE = "aggregates"

Step = Callable[[Batch, EventT[bytes]], None]


class EventCounts:
    """What the validator's new events and sightings add to the count tables: summed over a
    batch (a kind or a day counts many events at once) and sent with it to the increments topic,
    keyed by the count, where one partition owns each key."""

    def __init__(self, relay_counted: RecordTable, increments_topic: str) -> None:
        self._relay_counted = relay_counted
        self._increments_topic = increments_topic
        self._tally = IncrementTally()

    def new_event(self, source: EventT[bytes], event: Event) -> None:
        """`event` was claimed first-seen by `source`: it counts per kind, author and day."""
        self._tally.add(source.message.partition, event_counts(event))

    def new_sighting(self, source: EventT[bytes], event_id: str, relay_url: str | None) -> None:
        """A new sighting fact: the relay counts the event once, however often it serves it."""
        if relay_url is None:
            return
        key = relay_key(event_id, relay_url)
        if self._relay_counted.lookup(source, key) is None:
            self._tally.add(source.message.partition, [Increment(PER_RELAY, relay_url)])
            self._relay_counted.put(source, key, record_id(source))

    def send(self, batch: Batch) -> None:
        for partition, increment in self._tally.drain():
            batch.send(
                partition, self._increments_topic, increment.message_key(), increment.to_bytes()
            )


def add_aggregates(app: StreamApp, settings: Settings, codec: Codec) -> EventCounts | None:
    """Add the aggregate tables and the agents feeding them, unless `streams.aggregates` is off;
    what the validator reports counts through the `EventCounts` returned."""
    if not settings.streams.aggregates:
        return None
    kafka = settings.kafka
    raw_partitions = kafka.topics["events.raw"].partitions
    events_partitions = kafka.topics["events"].partitions
    probes_partitions = kafka.topics["probes"].partitions
    probes_topic = app.raw_topic(kafka.topic("probes"))
    rejects_name = kafka.topic("rejects")
    increments_topic = app.raw_topic(
        f"{app.conf.id}-{INCREMENTS_TOPIC}", internal=True, partitions=events_partitions
    )
    relay_counted = app.record_table("aggregate-relay-counted", partitions=raw_partitions)
    # The public tables have bytes keys, so their changelog keys are the plain UTF-8 text.
    counts = {
        name: app.record_table(name, partitions=events_partitions, key_type=bytes)
        for name in COUNT_TABLES
    }
    health = app.record_table(HEALTH_TABLE, partitions=probes_partitions, key_type=bytes)
    windows = HealthWindows.from_settings(settings.streams)

    def dead_letter(batch: Batch, source: EventT[bytes], detail: str) -> None:
        message = source.message
        value: bytes = source.value or b""
        seen_at = datetime.fromtimestamp(message.timestamp, UTC)
        dead = {**undecodable_record(detail, value, seen_at, message.topic), "stage": STAGE}
        batch.send(message.partition, rejects_name, b"", codec.encode("Reject", dead))

    def count(batch: Batch, source: EventT[bytes]) -> None:
        increment = Increment.from_bytes(source.value or b"")
        if increment is None:
            dead_letter(batch, source, "not an aggregate increment")
            return
        table, key = counts[increment.table], increment.key.encode()
        table.put(source, key, (table.lookup(source, key) or 0) + increment.by)

    def add_probe(batch: Batch, source: EventT[bytes]) -> None:
        try:
            probe: dict[str, Any] = codec.decode("RelayProbe", source.value or b"")
        except CodecError as exc:
            dead_letter(batch, source, str(exc))
            return
        relay = probe["relay_url"].encode()
        health.put(source, relay, apply_probe(health.lookup(source, relay), probe, windows))

    app.agent(increments_topic, name="count")(_each_record(app, count))
    app.agent(probes_topic, name="relay-health")(_each_record(app, add_probe))
    return EventCounts(relay_counted, increments_topic.get_topic_name())


def _each_record(app: StreamApp, step: Step) -> Callable[[faust.StreamT[bytes]], Awaitable[None]]:
    """An agent body running `step` on each record of each batch, inside the record boundary."""

    def handle(batch: Batch) -> None:
        for source in batch.events:
            step(batch, source)

    async def agent(stream: faust.StreamT[bytes]) -> None:
        await app.boundary.process(stream, handle)

    return agent
