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
from bigbrotr.nostr import Event, InvalidEvent
from bigbrotr.observability.metrics import RECORDS_IN, REJECTS
from bigbrotr.observability.tracing import headers_for_current_span, record_span
from streams.aggregates import add_aggregates
from streams.batches import Batch
from streams.records import (
    claimed_id,
    event_record,
    external_raw_record,
    record_id,
    reject_record,
    sighting_key,
    sighting_record,
    undecodable_record,
)
from streams.transactions import StreamApp
from streams.validate import BatchValidator, Limits


def build_app(
    settings: Settings, codec: Codec | None = None, validator: BatchValidator | None = None
) -> StreamApp:
    """A Faust app for these settings; the app id carries the topic prefix so deployments and
    tests sharing a broker never share consumer groups or changelogs. `validator` is given by
    whoever replaces its limits later (SIGHUP)."""
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
        # Agents hand the producer whole record batches per partition: they leave at once (no
        # linger), and a request may carry a large one.
        producer_linger=0.0,
        producer_max_batch_size=512 * 1024,
        broker_session_timeout=settings.streams.session_timeout_s,
        broker_commit_interval=settings.streams.commit_interval_s,
        batch_records=settings.streams.batch_records,
        batch_linger_s=settings.streams.batch_linger_ms / 1000,
        table_memory_bytes=settings.streams.table_memory_mib * 1024 * 1024,
    )
    codec = codec or Codec(registry=kafka.schema_registry_url)
    validator = validator or BatchValidator(Limits.from_settings(settings.streams))

    raw_in = RECORDS_IN.labels(kafka.topic("events.raw"))
    raw_topic = app.raw_topic(kafka.topic("events.raw"), partitions=partitions)
    raw_name, events_name, sightings_name, rejects_name = (
        kafka.topic(name) for name in ("events.raw", "events", "sightings", "rejects")
    )

    first_seen = app.record_table("first-seen", partitions=partitions)
    sighted = app.record_table("sighted", partitions=partitions)
    rejected = app.record_table("rejected", partitions=partitions)
    counts = add_aggregates(app, settings, codec)

    def send_reject(batch: Batch, source: EventT[bytes], record: dict[str, Any]) -> None:
        """Dead-letter a record once, however often it is read again."""
        claim = record_id(source)
        if rejected.lookup(source, claim) is not None:
            return
        key = (record["relay_url"] or "").encode()
        value = codec.encode("Reject", record)
        batch.send(
            source.message.partition, rejects_name, key, value, headers=headers_for_current_span()
        )
        REJECTS.labels(record["stage"], record["reason"]).inc()
        rejected.put(source, claim, claim)

    def decode(batch: Batch, source: EventT[bytes]) -> dict[str, Any] | None:
        message = source.message
        try:
            return codec.decode("RawEvent", source.value or b"")
        except CodecError as exc:
            seen_at = datetime.fromtimestamp(message.timestamp, UTC)
            value = source.value or b""
            with record_span(source.headers, source.key):
                record = undecodable_record(str(exc), value, seen_at, message.topic)
                send_reject(batch, source, record)
            return None

    def accept(batch: Batch, source: EventT[bytes], raw: dict[str, Any], event: Event) -> None:
        partition = source.message.partition
        key = event.id.encode()
        headers = headers_for_current_span()
        if source.key != key:
            batch.send(partition, raw_name, key, source.value, headers=headers)
            return
        claim = record_id(source)
        if first_seen.lookup(source, event.id) is None:
            record = codec.encode(
                "Event", event_record(event, raw["relay_url"], raw["seen_at"]), validated=False
            )
            batch.send(partition, events_name, key, record, headers=headers)
            first_seen.put(source, event.id, claim)
            if counts is not None:
                counts.new_event(source, event)
        sighting_id = sighting_key(event.id, raw)
        if sighted.lookup(source, sighting_id) is None:
            sighting = codec.encode("Sighting", sighting_record(event.id, raw), validated=False)
            batch.send(partition, sightings_name, key, sighting, headers=headers)
            sighted.put(source, sighting_id, claim)
            if counts is not None:
                counts.new_sighting(source, event.id, raw["relay_url"])

    def validate_batch(batch: Batch) -> None:
        decoded = [(source, decode(batch, source)) for source in batch.events]
        readable = [(source, raw) for source, raw in decoded if raw is not None]
        texts = [raw["raw"] for _, raw in readable]
        verdicts = validator.validate(texts, int(time.time()))
        for (source, raw), verdict in zip(readable, verdicts, strict=True):
            with record_span(source.headers, source.key):
                if isinstance(verdict, InvalidEvent):
                    send_reject(batch, source, reject_record(verdict, raw))
                else:
                    accept(batch, source, raw, verdict)
        if counts is not None:
            counts.send(batch)
        raw_in.inc(len(batch.events))

    @app.agent(raw_topic, name="validate")
    async def validate_raw(stream: faust.StreamT[bytes]) -> None:
        await app.boundary.process(stream, validate_batch)

    for external in settings.streams.external_topics:
        _bridge_external(app, external, raw_name, codec)
    return app


def _bridge_external(app: StreamApp, name: str, raw_name: str, codec: Codec) -> None:
    """Plain event JSON from another system's topic enters `events.raw` keyed by its claimed id."""
    source_topic = app.raw_topic(name)

    def bridge_batch(batch: Batch) -> None:
        for source in batch.events:
            seen_at = datetime.fromtimestamp(source.message.timestamp, UTC)
            value: bytes = source.value or b""
            record = external_raw_record(value, name, seen_at)
            encoded = codec.encode("RawEvent", record, validated=False)
            batch.send(source.message.partition, raw_name, claimed_id(value), encoded)

    @app.agent(source_topic, name=f"external-{name}")
    async def bridge(stream: faust.StreamT[bytes]) -> None:
        await app.boundary.process(stream, bridge_batch)
