"""Reading a compacted topic to its current end: the latest value of every key, as a table.

The finder rebuilds its state this way at start (`relays` for the known URLs, `relay-candidates`
for the retries in flight), so the log, not a local file, is its memory.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from bigbrotr.errors import TopicError

_BATCH_TIMEOUT_MS = 1000


async def read_table(bootstrap_servers: str, topic: str) -> dict[bytes, bytes]:
    """Latest value per key of `topic`, read from its start to the end it has now; a tombstone
    (null value) removes its key.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = _partitions(consumer, topic)
        consumer.unsubscribe()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        table: dict[bytes, bytes] = {}
        remaining = [tp for tp in partitions if ends[tp] > 0]
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=_BATCH_TIMEOUT_MS)
            for messages in batches.values():
                for message in messages:
                    if message.key is None:
                        continue
                    if message.value is None:
                        table.pop(message.key, None)
                    else:
                        table[message.key] = message.value
            remaining = [tp for tp in remaining if await consumer.position(tp) < ends[tp]]
        return table
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, for consumers that assign them by hand.

    Manual assignment because the finder runs as one process: joining a consumer group would
    only add a rebalance to every start. A group-less consumer subscribed to the topic is the
    public way to get its metadata.
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        return _partitions(consumer, topic)
    finally:
        await consumer.stop()


def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    numbers = sorted(consumer.partitions_for_topic(topic) or ())
    if not numbers:
        raise TopicError(
            f"topic {topic} does not exist; create the topics with `bigbrotr topics create`"
        )
    return [TopicPartition(topic, number) for number in numbers]
