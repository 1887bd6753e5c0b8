"""Offsets as the broker reports them: partitions, end offsets, consumer groups and their commits.

Shared by `bigbrotr status` and the consumer-lag metric, so both compute lag the same way. End
offsets are read_committed (the last stable offset): transaction markers and open transactions
are not lag a reader could close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from bigbrotr.errors import TopicError
from bigbrotr.topics import kafka_unreachable, new_admin

Partition = tuple[str, int]
"""(full topic name, partition number)"""


class BrokerOffsets:
    """One admin connection; every call raises `TopicError` when the broker does not answer."""

    def __init__(self, bootstrap_servers: str, timeout_s: float = 10.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self._admin = new_admin(bootstrap_servers)

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        """Every partition of those of `topics` that exist."""
        wanted = set(topics)
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise kafka_unreachable(self.bootstrap_servers, exc.args[0]) from exc
        return sorted(
            (name, number)
            for name, topic in metadata.topics.items()
            if name in wanted and topic.error is None
            for number in topic.partitions
        )

    def ends(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        return self._list_offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]

    def starts(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        return self._list_offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]

    def at_time(self, partitions: Sequence[Partition], ms: int) -> dict[Partition, int]:
        """First offset at or after `ms`; a partition with none gets its end offset."""
        found = self._list_offsets(partitions, OffsetSpec.for_timestamp(ms))
        ends = self.ends([p for p, offset in found.items() if offset < 0])
        return {p: ends[p] if offset < 0 else offset for p, offset in found.items()}

    def _list_offsets(
        self, partitions: Sequence[Partition], spec: OffsetSpec
    ) -> dict[Partition, int]:
        if not partitions:
            return {}
        request = {TopicPartition(topic, number): spec for topic, number in partitions}
        try:
            futures = self._admin.list_offsets(
                request,
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=self.timeout_s,
            )
            return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
        except KafkaException as exc:
            raise kafka_unreachable(self.bootstrap_servers, exc.args[0]) from exc

    def groups(self, prefix: str = "") -> list[str]:
        """Consumer groups whose id starts with `prefix`."""
        try:
            listed = self._admin.list_consumer_groups(request_timeout=self.timeout_s).result()
        except KafkaException as exc:
            raise kafka_unreachable(self.bootstrap_servers, exc.args[0]) from exc
        return sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))

    def committed(self, group: str) -> dict[Partition, int]:
        """Offsets `group` committed to Kafka (partitions it never committed are absent)."""
        try:
            future = self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self.timeout_s
            )[group]
            result = future.result()
        except KafkaException as exc:
            raise TopicError(f"cannot read the offsets of consumer group {group}: {exc}") from exc
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or ()
            if tp.offset >= 0 and tp.error is None
        }
