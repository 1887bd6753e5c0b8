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
        partitions = assign_whole_topic(consumer, topic)
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


def assign_whole_topic(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Turn a started consumer subscribed to `topic` into one assigned all of its partitions.

    Manual assignment: the finder runs as one process, and a group rebalance would only add
    seconds to every start.
    """
    numbers = sorted(consumer.partitions_for_topic(topic) or ())
    if not numbers:
        raise TopicError(
            f"topic {topic} does not exist; create the topics with `bigbrotr topics create`"
        )
    partitions = [TopicPartition(topic, number) for number in numbers]
    consumer.unsubscribe()
    consumer.assign(partitions)
    return partitions
