"""The connectors' producer on the real broker: where keyed records land, and how it fails."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bigbrotr.config import KafkaSettings, load_settings
from bigbrotr.errors import PublishError, TopicError
from bigbrotr.producer import Producer
from bigbrotr.topics import create_topics

pytestmark = pytest.mark.integration


async def test_keyed_records_land_where_the_java_partitioner_puts_them(
    kafka_settings: KafkaSettings,
) -> None:
    create_topics(kafka_settings)
    topic = kafka_settings.topic("events.raw")
    keys = [f"key {n}".encode() for n in range(300)] + [b"", "ünïcode".encode()]
    producer = Producer(kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"value", key=key) for key in keys]
        for delivered in sent:
            await delivered
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        landed: dict[bytes, int] = {}
        while len(landed) < len(keys):
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                landed.update((message.key or b"", message.partition) for message in messages)
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
    finally:
        await consumer.stop()
    assert len(partitions) > 1
    java = DefaultPartitioner()
    assert landed == {key: java(key, partitions, partitions) for key in keys}


async def test_a_record_the_broker_cannot_take_fails_with_a_publish_error(
    kafka_settings: KafkaSettings,
) -> None:
    create_topics(kafka_settings)
    producer = Producer(kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        with pytest.raises(PublishError, match="cannot publish"):
            await producer.send(kafka_settings.topic("events.raw"), b"x" * (2 << 20), key=b"k")
        await producer.send_and_wait(kafka_settings.topic("events.raw"), b"fits", key=b"k")
    finally:
        await producer.stop()


async def test_a_group_is_confirmed_once_the_broker_holds_every_record(
    kafka_settings: KafkaSettings,
) -> None:
    create_topics(kafka_settings)
    topic = kafka_settings.topic("events.raw")
    producer = Producer(kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        group = producer.deliveries()
        await group.confirmed()  # nothing sent: nothing to wait for
        for number in range(1000):
            await group.send(topic, f"value {number}".encode(), key=f"key {number}".encode())
        await group.confirmed()
        ends = await _end_offsets(kafka_settings, topic)
    finally:
        await producer.stop()
    assert sum(ends) == 1000


async def test_a_group_with_a_refused_record_fails_its_confirmation(
    kafka_settings: KafkaSettings,
) -> None:
    create_topics(kafka_settings)
    topic = kafka_settings.topic("events.raw")
    producer = Producer(kafka_settings.bootstrap_servers)
    # librdkafka accepts the record locally; the broker refuses it (over its 1 MiB default).
    producer._config["message.max.bytes"] = 4 << 20
    await producer.start()
    try:
        group = producer.deliveries()
        await group.send(topic, b"fits", key=b"a")
        await group.send(topic, b"x" * (2 << 20), key=b"b")
        await group.send(topic, b"fits too", key=b"c")
        with pytest.raises(PublishError, match="did not take a record"):
            await group.confirmed()
    finally:
        await producer.stop()


async def _end_offsets(kafka_settings: KafkaSettings, topic: str) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_settings.bootstrap_servers, group_id=None
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, number)
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        return list((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_an_unreachable_broker_is_a_topic_error_on_start() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:9"})
    producer = Producer(settings.kafka.bootstrap_servers)
    with pytest.raises(TopicError, match=r"cannot reach Kafka at 127\.0\.0\.1:9"):
        await producer.start(timeout_s=1.0)
    await producer.stop()


async def test_sending_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await Producer("127.0.0.1:9").send("topic", b"value")
