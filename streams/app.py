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
from faust.types import EventT

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError
from bigbrotr.nostr import InvalidEvent
from bigbrotr.observability.metrics import RECORDS_IN, RECORDS_OUT, REJECTS
from bigbrotr.observability.tracing import headers_for_current_span, record_span
from streams.aggregates import add_aggregates
from streams.records import (
    claimed_id,
    event_record,
    external_raw_record,
    reject_record,
    sighting_key,
    sighting_record,
    undecodable_record,
)
from streams.transactions import StreamApp
from streams.validate import CurrentLimits, Limits, validate


def build_app(
    settings: Settings, codec: Codec | None = None, limits: CurrentLimits | None = None
) -> StreamApp:
    """A Faust app for these settings; the app id carries the topic prefix so deployments and
    tests sharing a broker never share consumer groups or changelogs. The validator reads
    `limits` per record (default: from `settings.streams`)."""
    kafka = settings.kafka
    partitions = kafka.topics["events.raw"].partitions
    app = StreamApp(
        settings.streams_app_id,
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
        # Sends only queue a record; the commit waits for them. A short linger batches a
        # transaction's records into few requests instead of one request each.
        producer_linger=settings.streams.producer_linger_ms / 1000,
        broker_session_timeout=settings.streams.session_timeout_s,
    )
    codec = codec or Codec(registry=kafka.schema_registry_url)
    limits = limits or CurrentLimits(Limits.from_settings(settings.streams))

    def topic(name: str, **extra: Any) -> faust.TopicT:
        return app.topic(kafka.topic(name), key_serializer="raw", value_serializer="raw", **extra)

    raw_in = RECORDS_IN.labels(kafka.topic("events.raw"))
    raw_out, events_out, sightings_out, rejects_out = (
        RECORDS_OUT.labels(kafka.topic(name))
        for name in ("events.raw", "events", "sightings", "rejects")
    )

    raw_topic = topic("events.raw", partitions=partitions)
    events_topic = topic("events")
    sightings_topic = topic("sightings")
    rejects_topic = topic("rejects")

    first_seen = app.record_table("first-seen", partitions=partitions)
    sighted = app.record_table("sighted", partitions=partitions)
    rejected = app.record_table("rejected", partitions=partitions)

    async def send_reject(record: dict[str, Any]) -> None:
        key = (record["relay_url"] or "").encode()
        await rejects_topic.send(
            key=key, value=codec.encode("Reject", record), headers=headers_for_current_span()
        )
        rejects_out.inc()
        REJECTS.labels(record["stage"], record["reason"]).inc()

    async def validate_one(message_event: EventT[bytes]) -> None:
        message = message_event.message
        record_id = f"{message.partition}:{message.offset}"

        value: bytes = message_event.value
        try:
            raw = codec.decode("RawEvent", value)
        except CodecError as exc:
            if rejected.get(record_id) is None:
                seen_at = datetime.fromtimestamp(message.timestamp, UTC)
                await send_reject(undecodable_record(str(exc), value, seen_at, message.topic))
                rejected[record_id] = record_id
            return
        try:
            event = validate(raw["raw"], limits.limits, int(time.time()))
        except InvalidEvent as error:
            if rejected.get(record_id) is None:
                await send_reject(reject_record(error, raw))
                rejected[record_id] = record_id
            return
        if message_event.key != event.id.encode():
            await raw_topic.send(
                key=event.id.encode(), value=value, headers=headers_for_current_span()
            )
            raw_out.inc()
            return
        if first_seen.get(event.id) is None:
            record = event_record(event, raw["relay_url"], raw["seen_at"])
            await events_topic.send(
                key=message_event.key,
                value=codec.encode("Event", record),
                headers=headers_for_current_span(),
            )
            events_out.inc()
            first_seen[event.id] = record_id
        key = sighting_key(event.id, raw)
        if sighted.get(key) is None:
            sighting = sighting_record(event.id, raw)
            await sightings_topic.send(
                key=message_event.key,
                value=codec.encode("Sighting", sighting),
                headers=headers_for_current_span(),
            )
            sightings_out.inc()
            sighted[key] = record_id

    @app.agent(raw_topic, name="validate")
    async def validate_raw(stream: faust.StreamT[bytes]) -> None:
        async for message_event in app.boundary.each(stream):
            with record_span(message_event.headers, message_event.key):
                await validate_one(message_event)
            raw_in.inc()

    for external in settings.streams.external_topics:
        _bridge_external(app, external, raw_topic, codec)
    add_aggregates(app, settings, codec)
    return app


def _bridge_external(app: StreamApp, name: str, raw_topic: faust.TopicT, codec: Codec) -> None:
    """Plain event JSON from another system's topic enters `events.raw` keyed by its claimed id."""
    source = app.topic(name, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"external-{name}")
    async def bridge(stream: faust.StreamT[bytes]) -> None:
        async for message_event in app.boundary.each(stream):
            seen_at = datetime.fromtimestamp(message_event.message.timestamp, UTC)
            value: bytes = message_event.value or b""
            record = external_raw_record(value, name, seen_at)
            await raw_topic.send(key=claimed_id(value), value=codec.encode("RawEvent", record))
