"""Whole topics read back after a run, read_committed (a record of an aborted transaction is no
output), up to the end offsets seen when reading starts."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bigbrotr.config import Settings
from bigbrotr.errors import TopicError
from bigbrotr.observability.offsets import BrokerOffsets


async def read_topic(
    settings: Settings, name: str, timeout_s: float = 300.0
) -> list[ConsumerRecord[bytes, bytes]]:
    topic = settings.kafka.topic(name)
    numbers = await asyncio.to_thread(
        BrokerOffsets(settings.kafka.bootstrap_servers).partitions, [topic]
    )
    if not numbers:
        raise TopicError(f"{topic} does not exist")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for _, number in numbers]
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        for partition in partitions:
            consumer.seek(partition, 0)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while [p for p in partitions if await consumer.position(p) < end[p]]:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(messages)
    finally:
        await consumer.stop()
    return records
