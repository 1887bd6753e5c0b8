"""The foundation end to end: Avro record -> Kafka -> consumer group -> PostgreSQL -> back."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics

pytestmark = pytest.mark.integration

REAL_EVENTS = Path(__file__).parents[1] / "data" / "real_events.jsonl"


def _first_real_event() -> dict[str, object]:
    with REAL_EVENTS.open() as lines:
        event: dict[str, object] = json.loads(next(lines))
    return event


async def test_avro_record_through_kafka_into_postgres(settings: Settings) -> None:
    reports = create_topics(settings.kafka)
    assert {r.outcome for r in reports} == {"created"}
    assert len(reports) == len(settings.kafka.topics)

    codec = Codec()
    nostr = _first_real_event()
    record = {
        **nostr,
        "first_seen_relay": "wss://relay.example.com",
        "first_seen_at": 1_700_000_000_123,
    }
    topic = settings.kafka.topic("events")

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, codec.encode("Event", record), key=str(nostr["id"]).encode()
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=f"{settings.kafka.topic_prefix}smoke",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await consumer.getone()
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(message.topic, message.partition))
    finally:
        await consumer.stop()
    assert message.key == str(nostr["id"]).encode()
    assert committed == message.offset + 1
    decoded = codec.decode("Event", message.value)
    assert decoded["id"] == nostr["id"]
    assert decoded["tags"] == nostr["tags"]

    await migrate(settings.database.dsn())
    conn = await asyncpg.connect(settings.database.dsn())
    try:
        await conn.execute(
            """INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig,
                                   first_seen_at, first_seen_relay)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)""",
            bytes.fromhex(decoded["id"]),
            bytes.fromhex(decoded["pubkey"]),
            decoded["created_at"],
            decoded["kind"],
            json.dumps(decoded["tags"]),
            decoded["content"],
            bytes.fromhex(decoded["sig"]),
            decoded["first_seen_at"],
            decoded["first_seen_relay"],
        )
        row = await conn.fetchrow(
            """SELECT encode(id, 'hex') AS id, kind, tags, content,
                      (extract(epoch FROM first_seen_at) * 1000)::bigint AS first_seen_ms
               FROM events WHERE id = $1""",
            bytes.fromhex(str(nostr["id"])),
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["id"] == nostr["id"]
    assert row["kind"] == nostr["kind"]
    assert json.loads(row["tags"]) == nostr["tags"]
    assert row["content"] == nostr["content"]
    assert row["first_seen_ms"] == record["first_seen_at"]
