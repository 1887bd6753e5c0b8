"""Aggregate tables kept current from the stream; their changelog topics are the public result.

Counts per kind, pubkey and day come from `events`, counts per relay from `sightings`, health per
relay from `probes`. Every table lives in RocksDB with a compacted changelog topic named
`<app id>-<table>-changelog`: plain UTF-8 keys, JSON values (README, "Aggregate tables").

Nothing is counted twice. A count step first claims the event id (or event and relay) in a
dedupe table, so a second record about the same event adds nothing; the increment it sends names
its source record, and the count table skips records it already applied (`streams.marks`), so the
same record delivered again (a crash before commit, a rewound group) adds nothing either.

Tables and claims reach the local RocksDB store at once but the changelog only when the
transaction commits. A record delivered again may be one whose transaction aborted, so every
step writes its value again (the claim, the current count, the current health) rather than
skipping silently: the changelog then catches up with the store.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TableT

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError
from streams.counts import COUNT_TABLES, PER_RELAY, Increment, event_counts, relay_key
from streams.health import HealthWindows, apply_probe
from streams.marks import count_once
from streams.records import output_owed, undecodable_record

HEALTH_TABLE = "relay-health"
STAGE = "aggregates"

log = logging.getLogger("bigbrotr.aggregates")


def add_aggregates(app: faust.App, settings: Settings, codec: Codec) -> None:
    """Add the aggregate tables and the agents feeding them, unless `streams.aggregates` is off."""
    if not settings.streams.aggregates:
        return
    kafka = settings.kafka

    def source(name: str) -> tuple[faust.TopicT, int]:
        partitions = kafka.topics[name].partitions
        topic = app.topic(kafka.topic(name), key_serializer="raw", value_serializer="raw")
        return topic, partitions

    def table(name: str, partitions: int) -> TableT[bytes, Any]:
        """Keys are UTF-8 bytes (Faust then writes them raw) and values JSON, so a reader of the
        changelog needs nothing of Faust's."""
        return app.Table(name, partitions=partitions, key_type=bytes)

    events_topic, events_partitions = source("events")
    sightings_topic, sightings_partitions = source("sightings")
    probes_topic, probes_partitions = source("probes")
    rejects_topic = app.topic(kafka.topic("rejects"), key_serializer="raw", value_serializer="raw")
    increments_topic = app.topic(
        f"{app.conf.id}-aggregate-increments",
        internal=True,
        partitions=events_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    counted = table("aggregate-counted", events_partitions)
    relay_counted = table("aggregate-relay-counted", sightings_partitions)
    counts = {name: table(name, events_partitions) for name in COUNT_TABLES}
    health = table(HEALTH_TABLE, probes_partitions)
    windows = HealthWindows.from_settings(settings.streams)

    async def decoded(record: str, message_event: faust.EventT[bytes]) -> dict[str, Any] | None:
        """The record, or None after dead-lettering a value that is not one."""
        message = message_event.message
        value: bytes = message_event.value or b""
        try:
            return codec.decode(record, value)
        except CodecError as exc:
            seen_at = datetime.fromtimestamp(message.timestamp, UTC)
            dead = {**undecodable_record(str(exc), value, seen_at, message.topic), "stage": STAGE}
            await rejects_topic.send(key=b"", value=codec.encode("Reject", dead))
            return None

    async def send(increments: list[Increment]) -> None:
        for increment in increments:
            await increments_topic.send(key=increment.message_key(), value=increment.to_bytes())

    @app.agent(events_topic, name="count-events")
    async def count_events(stream: faust.StreamT[bytes]) -> None:
        async for message_event in stream.events():
            event = await decoded("Event", message_event)
            if event is None:
                continue
            message = message_event.message
            record_id = f"{message.partition}:{message.offset}"
            key = event["id"].encode()
            if output_owed(counted.get(key), record_id, replayable=True):
                await send(event_counts(event, message.partition, message.offset))
                counted[key] = record_id

    @app.agent(sightings_topic, name="count-sightings")
    async def count_sightings(stream: faust.StreamT[bytes]) -> None:
        async for message_event in stream.events():
            sighting = await decoded("Sighting", message_event)
            if sighting is None or sighting["relay_url"] is None:
                continue
            message = message_event.message
            record_id = f"{message.partition}:{message.offset}"
            key = relay_key(sighting["event_id"], sighting["relay_url"]).encode()
            if output_owed(relay_counted.get(key), record_id, replayable=True):
                increment = Increment(
                    PER_RELAY, sighting["relay_url"], message.partition, message.offset
                )
                await send([increment])
                relay_counted[key] = record_id

    @app.agent(increments_topic, name="count")
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            increment = Increment.from_bytes(value)
            if increment is None:
                log.warning("ignored a record on %s that is not an increment", increments_topic)
                continue
            target = counts[increment.table]
            key = increment.key.encode()
            current = target.get(key)
            target[key] = count_once(current, increment.partition, increment.offset) or current

    @app.agent(probes_topic, name="relay-health")
    async def relay_health(stream: faust.StreamT[bytes]) -> None:
        async for message_event in stream.events():
            probe = await decoded("RelayProbe", message_event)
            if probe is None:
                continue
            message = message_event.message
            relay = probe["relay_url"].encode()
            current = health.get(relay)
            applied = apply_probe(current, probe, message.partition, message.offset, windows)
            health[relay] = applied or current
