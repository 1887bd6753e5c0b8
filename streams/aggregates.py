"""Aggregate tables kept current from the stream; their changelog topics are the public result.

Counts per kind, pubkey and day come from `events`, counts per relay from `sightings`, health per
relay from `probes`. Every table is a `RecordTable` in RocksDB with a compacted changelog topic
named `<app id>-<table>-changelog`: UTF-8 text keys, JSON values (README, "Aggregate tables").

Nothing is counted twice. `events` holds each id once and `sightings` each (event, relay, time)
once, and a count step also claims the event id (or event and relay) in a table of its own, so a
second record about the same event adds nothing. A claim, its increments and the count they add
commit with the offsets of the records that made them (`streams.transactions`): a record read
again after a crash finds no trace of its aborted transaction and is counted as if new, and a
committed claim is never undone, so `claim is not None` means "counted".
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
from streams.records import undecodable_record
from streams.transactions import StreamApp

HEALTH_TABLE = "relay-health"
INCREMENTS_TOPIC = "aggregate-increments"
STAGE = "aggregates"

Step = Callable[[Batch, EventT[bytes]], None]
Finish = Callable[[Batch], None]


def add_aggregates(app: StreamApp, settings: Settings, codec: Codec) -> None:
    """Add the aggregate tables and the agents feeding them, unless `streams.aggregates` is off."""
    if not settings.streams.aggregates:
        return
    kafka = settings.kafka

    def source(name: str) -> tuple[faust.TopicT, int]:
        partitions = kafka.topics[name].partitions
        topic = app.raw_topic(kafka.topic(name))
        return topic, partitions

    events_topic, events_partitions = source("events")
    sightings_topic, sightings_partitions = source("sightings")
    probes_topic, probes_partitions = source("probes")
    rejects_name = kafka.topic("rejects")
    increments_topic = app.raw_topic(
        f"{app.conf.id}-{INCREMENTS_TOPIC}", internal=True, partitions=events_partitions
    )
    counted = app.record_table("aggregate-counted", partitions=events_partitions)
    relay_counted = app.record_table("aggregate-relay-counted", partitions=sightings_partitions)
    # The public tables have bytes keys, so their changelog keys are the plain UTF-8 text.
    counts = {
        name: app.record_table(name, partitions=events_partitions, key_type=bytes)
        for name in COUNT_TABLES
    }
    health = app.record_table(HEALTH_TABLE, partitions=probes_partitions, key_type=bytes)
    windows = HealthWindows.from_settings(settings.streams)

    increments_name = increments_topic.get_topic_name()

    def dead_letter(batch: Batch, source: EventT[bytes], detail: str) -> None:
        message = source.message
        value: bytes = source.value or b""
        seen_at = datetime.fromtimestamp(message.timestamp, UTC)
        dead = {**undecodable_record(detail, value, seen_at, message.topic), "stage": STAGE}
        batch.send(message.partition, rejects_name, b"", codec.encode("Reject", dead))

    def decoded(batch: Batch, record: str, source: EventT[bytes]) -> dict[str, Any] | None:
        """The record, or None after dead-lettering a value that is not one."""
        try:
            return codec.decode(record, source.value or b"")
        except CodecError as exc:
            dead_letter(batch, source, str(exc))
            return None

    tally = IncrementTally()

    def count_later(source: EventT[bytes], increments: list[Increment]) -> None:
        tally.add(source.message.partition, increments)

    def send_tally(batch: Batch) -> None:
        """The batch's increments, summed: a kind or a day counts many events at once."""
        for partition, increment in tally.drain():
            batch.send(partition, increments_name, increment.message_key(), increment.to_bytes())

    def record_id(source: EventT[bytes]) -> str:
        return f"{source.message.partition}:{source.message.offset}"

    def count_event(batch: Batch, source: EventT[bytes]) -> None:
        event = decoded(batch, "Event", source)
        if event is not None and counted.lookup(source, event["id"]) is None:
            count_later(source, event_counts(event))
            counted.put(source, event["id"], record_id(source))

    def count_sighting(batch: Batch, source: EventT[bytes]) -> None:
        sighting = decoded(batch, "Sighting", source)
        if sighting is None or sighting["relay_url"] is None:
            return
        key = relay_key(sighting["event_id"], sighting["relay_url"])
        if relay_counted.lookup(source, key) is None:
            count_later(source, [Increment(PER_RELAY, sighting["relay_url"])])
            relay_counted.put(source, key, record_id(source))

    def count(batch: Batch, source: EventT[bytes]) -> None:
        increment = Increment.from_bytes(source.value or b"")
        if increment is None:
            dead_letter(batch, source, "not an aggregate increment")
            return
        table, key = counts[increment.table], increment.key.encode()
        table.put(source, key, (table.lookup(source, key) or 0) + increment.by)

    def add_probe(batch: Batch, source: EventT[bytes]) -> None:
        probe = decoded(batch, "RelayProbe", source)
        if probe is not None:
            relay = probe["relay_url"].encode()
            health.put(source, relay, apply_probe(health.lookup(source, relay), probe, windows))

    agents: tuple[tuple[faust.TopicT, str, Step, Finish | None], ...] = (
        (events_topic, "count-events", count_event, send_tally),
        (sightings_topic, "count-sightings", count_sighting, send_tally),
        (increments_topic, "count", count, None),
        (probes_topic, "relay-health", add_probe, None),
    )
    for topic, name, step, finish in agents:
        app.agent(topic, name=name)(_each_record(app, step, finish))


def _each_record(
    app: StreamApp, step: Step, finish: Finish | None
) -> Callable[[faust.StreamT[bytes]], Awaitable[None]]:
    """An agent body running `step` on each record of each batch, then `finish` on the batch,
    inside the record boundary (one batch at a time holds it, so a shared tally is safe)."""

    def handle(batch: Batch) -> None:
        for source in batch.events:
            step(batch, source)
        if finish is not None:
            finish(batch)

    async def agent(stream: faust.StreamT[bytes]) -> None:
        await app.boundary.process(stream, handle)

    return agent
