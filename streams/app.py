"""The Faust application: topics, tables and agents wired from settings.

Validation, dedupe and provenance happen in one agent over `events.raw`, whose key is the claimed
event id: every record about one id lands in one partition, so the dedupe tables are local to
that partition and live in RocksDB (memory does not grow with history). A valid event whose record
key is not its id is re-published under the right key rather than deduplicated in the wrong place.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TableT

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError
from bigbrotr.nostr import InvalidEvent
from streams.aggregates import add_aggregates
from streams.records import (
    claimed_id,
    event_record,
    external_raw_record,
    output_owed,
    reject_record,
    sighting_key,
    sighting_record,
    undecodable_record,
)
from streams.reprocess import load_frontier
from streams.validate import Limits, validate


def build_app(settings: Settings, codec: Codec | None = None) -> faust.App:
    """A Faust app for these settings; the app id carries the topic prefix so deployments and
    tests sharing a broker never share consumer groups or changelogs."""
    kafka = settings.kafka
    partitions = kafka.topics["events.raw"].partitions
    app = faust.App(
        f"{kafka.topic_prefix}{settings.streams.app_id}",
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        store="rocksdb://",
        datadir=str(settings.streams.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=kafka.replication_factor,
        processing_guarantee=settings.streams.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        producer_acks=-1,
    )
    codec = codec or Codec(registry=kafka.schema_registry_url)
    limits = Limits.from_settings(settings.streams)

    def topic(name: str, **extra: Any) -> faust.TopicT:
        return app.topic(kafka.topic(name), key_serializer="raw", value_serializer="raw", **extra)

    raw_topic = topic("events.raw", partitions=partitions)
    events_topic = topic("events")
    sightings_topic = topic("sightings")
    rejects_topic = topic("rejects")

    def table(name: str) -> TableT[str, Any]:
        return app.Table(name, partitions=partitions, key_type=str)

    first_seen = table("first-seen")
    sighted = table("sighted")
    rejected = table("rejected")
    frontier = load_frontier(settings)

    async def send_reject(record: dict[str, Any]) -> None:
        key = (record["relay_url"] or "").encode()
        await rejects_topic.send(key=key, value=codec.encode("Reject", record))

    @app.agent(raw_topic, name="validate")
    async def validate_raw(stream: faust.StreamT[bytes]) -> None:
        async for message_event in stream.events():
            message = message_event.message
            record_id = f"{message.partition}:{message.offset}"
            replayable = message.offset >= frontier.get(message.partition, 0)

            value: bytes = message_event.value
            try:
                raw = codec.decode("RawEvent", value)
            except CodecError as exc:
                if output_owed(rejected.get(record_id), record_id, replayable):
                    seen_at = datetime.fromtimestamp(message.timestamp, UTC)
                    await send_reject(undecodable_record(str(exc), value, seen_at, message.topic))
                    rejected[record_id] = record_id
                continue
            try:
                event = validate(raw["raw"], limits, int(time.time()))
            except InvalidEvent as error:
                if output_owed(rejected.get(record_id), record_id, replayable):
                    await send_reject(reject_record(error, raw))
                    rejected[record_id] = record_id
                continue
            if message_event.key != event.id.encode():
                await raw_topic.send(key=event.id.encode(), value=value)
                continue
            if output_owed(first_seen.get(event.id), record_id, replayable):
                record = event_record(event, raw["relay_url"], raw["seen_at"])
                await events_topic.send(key=message_event.key, value=codec.encode("Event", record))
                first_seen[event.id] = record_id
            key = sighting_key(event.id, raw)
            if output_owed(sighted.get(key), record_id, replayable):
                sighting = sighting_record(event.id, raw)
                await sightings_topic.send(
                    key=message_event.key, value=codec.encode("Sighting", sighting)
                )
                sighted[key] = record_id

    for external in settings.streams.external_topics:
        _bridge_external(app, external, raw_topic, codec)
    add_aggregates(app, settings, codec)
    return app


def _bridge_external(app: faust.App, name: str, raw_topic: faust.TopicT, codec: Codec) -> None:
    """Plain event JSON from another system's topic enters `events.raw` keyed by its claimed id."""
    source = app.topic(name, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"external-{name}")
    async def bridge(stream: faust.StreamT[bytes]) -> None:
        async for message_event in stream.events():
            seen_at = datetime.fromtimestamp(message_event.message.timestamp, UTC)
            value: bytes = message_event.value or b""
            record = external_raw_record(value, name, seen_at)
            await raw_topic.send(key=claimed_id(value), value=codec.encode("RawEvent", record))
