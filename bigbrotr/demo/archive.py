"""What the pipeline has made of the demo's relays so far: rows in PostgreSQL, dead letters on
`rejects`, and how many records each consumer group has still to read."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions
from confluent_kafka import TopicPartition as KafkaPartition

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.tail import TopicTail
from bigbrotr.topics import new_admin


@dataclass(frozen=True)
class Stored:
    relays: int
    events: int
    sightings: int
    probes: int


async def stored(conn: asyncpg.Connection) -> Stored:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM relays) AS relays, (SELECT count(*) FROM events) AS events,"
        " (SELECT count(*) FROM sightings) AS sightings,"
        " (SELECT count(*) FROM relay_probes) AS probes"
    )
    return Stored(row["relays"], row["events"], row["sightings"], row["probes"])


class RejectTally(TopicTail):
    """`async with RejectTally(settings) as tally:` counts dead letters by reason as they arrive
    (read_committed: a record of an aborted transaction is no dead letter).

    `reasons` counts distinct rejected records (reason, relay, original bytes): a relay's event
    pulled twice is two records of `events.raw`, and each of them is dead-lettered; `letters`
    counts every dead letter.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "rejects", read_committed=True)
        self._codec = Codec(registry=settings.kafka.schema_registry_url)
        self.letters = 0
        self._seen: set[tuple[str, str | None, bytes]] = set()

    def take(self, message: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        reject = self._codec.decode("Reject", message.value)
        self._seen.add((reject["reason"], reject["relay_url"], reject["original"]))
        self.letters += 1

    @property
    def reasons(self) -> Counter[str]:
        return Counter(reason for reason, _, _ in self._seen)


def worker_lag(settings: Settings) -> dict[str, int]:
    """Records of `events.raw` the worker's group has not committed yet."""
    group = settings.kafka.topic_prefix + settings.streams.app_id
    topic = settings.kafka.topic("events.raw")
    admin = new_admin(settings.kafka.bootstrap_servers)
    request = [ConsumerGroupTopicPartitions(group)]
    answer = admin.list_consumer_group_offsets(request)[group].result(10)
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.topic_partitions
        if tp.topic == topic and tp.offset >= 0
    }
    return records_behind(settings, [topic], committed)


async def sink_lag(settings: Settings, conn: asyncpg.Connection) -> dict[str, int]:
    """Records of the sink's topics not yet stored (offsets from `sink_offsets`)."""
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1",
        settings.kafka.topic_prefix + settings.sink.group_id,
    )
    committed = {(row["topic"], row["partition"]): row["next_offset"] for row in rows}
    topics = [settings.sink_topic(name) for name in settings.sink.topics]
    return await asyncio.to_thread(records_behind, settings, topics, committed)


def records_behind(
    settings: Settings, topics: list[str], committed: dict[tuple[str, int], int]
) -> dict[str, int]:
    """Per topic, the records a read_committed reader at `committed` (the start where a
    partition has none) would still get: transaction markers and aborted records take offsets
    but are no records, so offsets alone would overstate the lag."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "bigbrotr-demo-lag",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        behind = dict.fromkeys(topics, 0)
        assign: list[Any] = []
        metadata = consumer.list_topics(timeout=10)
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(KafkaPartition(topic, partition), 10)
                start = max(committed.get((topic, partition), low), low)
                if start < high:
                    assign.append(KafkaPartition(topic, partition, start))
        consumer.assign(assign)
        open_partitions = {(tp.topic, tp.partition) for tp in assign}
        while open_partitions:
            message = consumer.poll(5)
            if message is None:
                break
            topic = str(message.topic())
            if message.error() is None:
                behind[topic] += 1
            else:
                open_partitions.discard((topic, message.partition()))
        return behind
    finally:
        consumer.close()
