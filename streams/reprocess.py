"""Rewind the validator to the start of `events.raw`, so the whole raw log is validated again.

Its dedupe tables survive the rewind, so events and sightings already emitted are not emitted
twice; only records whose verdict changed add output. Before rewinding we save the group's
committed offsets as the *frontier*: every record below it had its output committed, so when it
is read again it is never mistaken for a record whose output a crash may have lost.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from bigbrotr.config import Settings
from bigbrotr.errors import ConfigError, TopicError
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
    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = {
        tp.partition: tp.offset
        for tp in listed[group].result(timeout=timeout_s).topic_partitions
        if tp.topic == topic and tp.offset >= 0
    }
    save_frontier(settings, committed)
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


def _frontier_file(settings: Settings) -> Path:
    return settings.streams.data_dir / "frontier.json"


def load_frontier(settings: Settings) -> dict[int, int]:
    """Per partition of `events.raw`, the offset below which all output is known committed."""
    try:
        saved = json.loads(_frontier_file(settings).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {_frontier_file(settings)} ({exc}); it is rebuilt by "
            "`bigbrotr worker --reprocess`, delete it only if no reprocessing is under way"
        ) from exc
    return {int(partition): int(offset) for partition, offset in saved.items()}


def save_frontier(settings: Settings, committed: dict[int, int]) -> None:
    """Only ever raise the frontier: what was known committed stays known committed."""
    merged = load_frontier(settings)
    for partition, offset in committed.items():
        merged[partition] = max(offset, merged.get(partition, 0))
    _frontier_file(settings).parent.mkdir(parents=True, exist_ok=True)
    _frontier_file(settings).write_text(json.dumps(merged))
