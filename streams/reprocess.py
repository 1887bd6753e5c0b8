"""Rewind the validator to the start of `events.raw`, so the whole raw log is validated again.

Its dedupe tables survive the rewind, so events and sightings already emitted are not emitted
twice; only records whose verdict changed add output.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from bigbrotr.config import Settings
from bigbrotr.errors import TopicError
from bigbrotr.topics import admin_client


def validator_group(settings: Settings) -> str:
    """Faust's consumer group is its app id."""
    return f"{settings.kafka.topic_prefix}{settings.streams.app_id}"


def rewind_validator(settings: Settings, timeout_s: float = 30.0) -> int:
    """Set the validator group's offsets on `events.raw` to the oldest retained record.

    The worker must be stopped (Kafka refuses to move offsets of an active group). Returns the
    number of partitions rewound.
    """
    topic = settings.kafka.topic("events.raw")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "group.id": f"{validator_group(settings)}.rewind",
        "logger": logging.getLogger("bigbrotr.kafka"),
    }
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        starts = [
            TopicPartition(
                topic,
                partition,
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)[
                    0
                ],
            )
            for partition in sorted(metadata.partitions)
        ]
    finally:
        consumer.close()
    admin = admin_client(settings.kafka)
    group = validator_group(settings)
    request = ConsumerGroupTopicPartitions(group, starts)
    futures = admin.alter_consumer_group_offsets([request])
    try:
        for future in futures.values():
            future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise TopicError(
            f"cannot rewind consumer group {validator_group(settings)}: {exc.args[0]}; "
            "stop every running `bigbrotr worker` first"
        ) from exc
    return len(starts)
