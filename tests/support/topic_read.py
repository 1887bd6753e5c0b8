"""Reads a topic from given offsets up to the end offsets it saw at the start."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bigbrotr.config import Settings

Offsets = dict[TopicPartition, int]


async def read_to_end(
    settings: Settings, name: str, *, start: Offsets | None = None, timeout_s: float = 60.0
) -> tuple[list[ConsumerRecord[bytes, bytes]], Offsets]:
    """Every record of the topic after `start` (all when None), and the end offsets."""
    topic = settings.kafka.topic(name)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        assert partitions, f"{topic} has no partitions"
        consumer.unsubscribe()
        consumer.assign(partitions)
        end: Offsets = await consumer.end_offsets(partitions)
        for partition in partitions:
            consumer.seek(partition, (start or {}).get(partition, 0))
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while [p for p in partitions if await consumer.position(p) < end[p]]:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(messages)
    finally:
        await consumer.stop()
    return records, end
