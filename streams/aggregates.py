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
from streams.counts import COUNT_TABLES, PER_RELAY, Increment, event_counts, relay_key
from streams.health import HealthWindows, apply_probe
from streams.records import undecodable_record
from streams.transactions import StreamApp

HEALTH_TABLE = "relay-health"
INCREMENTS_TOPIC = "aggregate-increments"
STAGE = "aggregates"

Step = Callable[[EventT[bytes]], Awaitable[None]]


def add_aggregates(app: StreamApp, settings: Settings, codec: Codec) -> None:
    """Add the aggregate tables and the agents feeding them, unless `streams.aggregates` is off."""
    if not settings.streams.aggregates:
        return
    kafka = settings.kafka

    def source(name: str) -> tuple[faust.TopicT, int]:
        partitions = kafka.topics[name].partitions
        topic = app.topic(kafka.topic(name), key_serializer="raw", value_serializer="raw")
        return topic, partitions

    events_topic, events_partitions = source("events")
    sightings_topic, sightings_partitions = source("sightings")
    probes_topic, probes_partitions = source("probes")
    rejects_topic = app.topic(kafka.topic("rejects"), key_serializer="raw", value_serializer="raw")
    increments_topic = app.topic(
        f"{app.conf.id}-{INCREMENTS_TOPIC}",
        internal=True,
        partitions=events_partitions,
        key_serializer="raw",
        value_serializer="raw",
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

    async def dead_letter(message_event: EventT[bytes], detail: str) -> None:
        message = message_event.message
        value: bytes = message_event.value or b""
        seen_at = datetime.fromtimestamp(message.timestamp, UTC)
        dead = {**undecodable_record(detail, value, seen_at, message.topic), "stage": STAGE}
        await rejects_topic.send(key=b"", value=codec.encode("Reject", dead))

    async def decoded(record: str, message_event: EventT[bytes]) -> dict[str, Any] | None:
        """The record, or None after dead-lettering a value that is not one."""
        try:
            return codec.decode(record, message_event.value or b"")
        except CodecError as exc:
            await dead_letter(message_event, str(exc))
            return None

    async def send(increments: list[Increment]) -> None:
        for increment in increments:
            await increments_topic.send(key=increment.message_key(), value=increment.to_bytes())

    def record_id(message_event: EventT[bytes]) -> str:
        return f"{message_event.message.partition}:{message_event.message.offset}"

    async def count_event(message_event: EventT[bytes]) -> None:
        event = await decoded("Event", message_event)
        if event is not None and counted.get(event["id"]) is None:
            await send(event_counts(event))
            counted[event["id"]] = record_id(message_event)

    async def count_sighting(message_event: EventT[bytes]) -> None:
        sighting = await decoded("Sighting", message_event)
        if sighting is None or sighting["relay_url"] is None:
            return
        key = relay_key(sighting["event_id"], sighting["relay_url"])
        if relay_counted.get(key) is None:
            await send([Increment(PER_RELAY, sighting["relay_url"])])
            relay_counted[key] = record_id(message_event)

    async def count(message_event: EventT[bytes]) -> None:
        increment = Increment.from_bytes(message_event.value or b"")
        if increment is None:
            await dead_letter(message_event, "not an aggregate increment")
            return
        table, key = counts[increment.table], increment.key.encode()
        table[key] = (table.get(key) or 0) + 1

    async def add_probe(message_event: EventT[bytes]) -> None:
        probe = await decoded("RelayProbe", message_event)
        if probe is not None:
            relay = probe["relay_url"].encode()
            health[relay] = apply_probe(health.get(relay), probe, windows)

    agents: tuple[tuple[faust.TopicT, str, Step], ...] = (
        (events_topic, "count-events", count_event),
        (sightings_topic, "count-sightings", count_sighting),
        (increments_topic, "count", count),
        (probes_topic, "relay-health", add_probe),
    )
    for topic, name, step in agents:
        app.agent(topic, name=name)(_each_record(app, step))


def _each_record(app: StreamApp, step: Step) -> Callable[[faust.StreamT[bytes]], Awaitable[None]]:
    """An agent body running `step` on each record inside the app's record boundary."""

    async def agent(stream: faust.StreamT[bytes]) -> None:
        async for message_event in app.boundary.each(stream):
            await step(message_event)

    return agent
