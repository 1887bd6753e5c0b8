"""Kafka records for the sink, read with confluent-kafka (librdkafka), read_committed.

Why librdkafka: it fetches and decompresses in C threads ahead of us, so a batch of thousands of
records costs one call; the assignment callback lets us hand over the start offsets of every
partition at once; and the producers of the connectors already use it.

Offsets are never committed to Kafka and Kafka's committed offsets are never read: a partition
always starts where `sink_offsets` says (or at its beginning), set in the assignment callback
(`GroupSource`), or where a replay starts (`FixedSource`). The blocking calls run in a thread; the
assignment callback runs in that thread and asks the event loop (free while it waits) for the
stored offsets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from bigbrotr.config import Settings
from bigbrotr.errors import SinkError
from bigbrotr.topics import kafka_unreachable
from connectors.sink.offsets import Partition

_NO_LEADER_YET = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}

log = logging.getLogger("bigbrotr.sink")

StoredOffsets = Callable[[], Coroutine[Any, Any, dict[Partition, int]]]


def position(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a record the consumer delivered (never unset then)."""
    return cast(str, message.topic()), cast(int, message.partition()), cast(int, message.offset())


def consumer_config(settings: Settings, *, eof: bool = False) -> dict[str, Any]:
    session_ms = int(settings.sink.session_timeout_s * 1000)
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "group.id": settings.kafka.topic_prefix + settings.sink.group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(session_ms // 5, 500),
        "enable.partition.eof": eof,
        "logger": logging.getLogger("bigbrotr.kafka"),
    }


class Source:
    """What the run loop reads from; `expected` is the stored offset of every owned partition."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self.expected: dict[Partition, int | None] = {}
        self.generation = 0
        self.reached: dict[Partition, int] = {}
        """Offsets at which a partition's end was seen (with `enable.partition.eof`)."""

    async def poll(self, max_records: int, timeout_s: float) -> list[Any]:
        messages = await asyncio.to_thread(self._consumer.consume, max_records, timeout_s)
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                topic, partition, offset = position(message)
                self.reached[(topic, partition)] = offset
            elif error.fatal():
                raise SinkError(f"Kafka consumer failed: {error}")
            else:
                log.warning("Kafka: %s", error)
        return [m for m in records if self.owns(*position(m))]

    def owns(self, topic: str, partition: int, offset: int) -> bool:
        """A record of a partition we hold, at or past what is stored (older ones are done)."""
        key = (topic, partition)
        if key not in self.expected:
            return False
        stored = self.expected[key]
        return stored is None or offset >= stored

    async def seek(self, positions: Mapping[Partition, int | None]) -> None:
        """Read these partitions again from their stored offsets (after being fenced)."""
        for (topic, partition), offset in positions.items():
            if (topic, partition) not in self.expected:
                continue
            self.expected[(topic, partition)] = offset
            self.reached.pop((topic, partition), None)
            start = OFFSET_BEGINNING if offset is None else offset
            await asyncio.to_thread(self._consumer.seek, TopicPartition(topic, partition, start))
        self.generation += 1

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)


class GroupSource(Source):
    """Partitions shared by the consumer group; each starts at the offset stored with the rows.

    The rebalance callbacks run inside `consume()` on a worker thread; the assignment one asks
    the event loop for the stored offsets and waits at most `sink.rejoin_after_s` for them. A
    sink that holds no partitions that long (its session lost while the broker was away and the
    group never gave them back, or the offsets did not come) says so and joins again with a
    new consumer, so no stall outlasts that bound.
    """

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        stored: StoredOffsets,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._stored = stored
        self._loop = loop
        self._group = settings.kafka.topic_prefix + settings.sink.group_id
        self._rejoin_after_s = settings.sink.rejoin_after_s
        self._report_every_s = settings.sink.session_timeout_s
        self._unassigned_since: float | None = time.monotonic()
        self._reported_at = self._unassigned_since
        self._rejoin = False
        super().__init__(self._subscribed())

    def _subscribed(self) -> Consumer:
        consumer = Consumer(consumer_config(self._settings))
        consumer.subscribe(
            self._topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )
        return consumer

    async def poll(self, max_records: int, timeout_s: float) -> list[Any]:
        records = await super().poll(max_records, timeout_s)
        await self._watch()
        return records

    async def _watch(self) -> None:
        """Log the wait for partitions now and then; past `rejoin_after_s`, join again."""
        since = self._unassigned_since
        if since is None:
            return
        now = time.monotonic()
        if self._rejoin or now - since >= self._rejoin_after_s:
            log.warning(
                "no partitions from group %s for %.0f s: joining it again with a new consumer",
                self._group,
                now - since,
            )
            await self._renew()
        elif now - self._reported_at >= self._report_every_s:
            self._reported_at = now
            log.info(
                "waiting %.0f s so far for group %s to assign partitions", now - since, self._group
            )

    async def _renew(self) -> None:
        """Close the consumer (in bounded time: a stuck one is left behind) and subscribe anew."""
        old = self._consumer
        closing = asyncio.ensure_future(asyncio.to_thread(old.close))
        try:
            await asyncio.wait_for(asyncio.shield(closing), self._report_every_s)
        except TimeoutError:
            log.warning(
                "the old consumer did not close within %.0f s; left behind", self._report_every_s
            )
        except KafkaException as exc:
            log.warning("closing the old consumer: %s", exc)
        self.expected.clear()
        self.reached.clear()
        self.generation += 1
        self._rejoin = False
        self._consumer = await asyncio.to_thread(self._subscribed)
        self._unassigned_since = self._reported_at = time.monotonic()

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return
        future = asyncio.run_coroutine_threadsafe(self._stored(), self._loop)
        try:
            stored = future.result(timeout=self._rejoin_after_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning(
                "the stored offsets did not come within %.0f s; taking no partitions and "
                "joining group %s again",
                self._rejoin_after_s,
                self._group,
            )
            consumer.assign([])
            self._rejoin = True
            return
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            tp.offset = OFFSET_BEGINNING if offset is None else offset
            self.expected[(tp.topic, tp.partition)] = offset
        consumer.assign(partitions)
        self.generation += 1
        if self.expected:
            self._unassigned_since = None
        log.info(
            "assigned %s", ", ".join(f"{t.topic}[{t.partition}]@{t.offset}" for t in partitions)
        )

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return
        for tp in partitions:
            self.expected.pop((tp.topic, tp.partition), None)
        consumer.unassign()
        self.generation += 1
        if not self.expected and self._unassigned_since is None:
            self._unassigned_since = self._reported_at = time.monotonic()

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group session expired (the broker was away): others may hold them by now."""
        if consumer is not self._consumer:
            return
        log.warning(
            "lost %d partitions (group %s session expired); waiting to be assigned again",
            len(partitions),
            self._group,
        )
        self._revoke(consumer, partitions)


class FixedSource(Source):
    """Every partition of the topics, from given offsets, without a group (replay)."""

    def __init__(self, settings: Settings, starts: Mapping[Partition, int]) -> None:
        super().__init__(Consumer(consumer_config(settings, eof=True)))
        self.expected = dict(starts)
        self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])


def partitions_of(
    settings: Settings, topics: Sequence[str], timeout_s: float = 10.0
) -> list[Partition]:
    """Every partition of `topics`; `SinkError` naming the missing topics."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "-"})
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc.args[0]) from exc
    finally:
        consumer.close()
    missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error]
    if missing:
        raise SinkError(f"topics {', '.join(missing)} do not exist; run `bigbrotr topics create`")
    return sorted((t, p) for t in topics for p in metadata.topics[t].partitions)


def watermarks(
    settings: Settings, partitions: Sequence[Partition], timeout_s: float = 10.0
) -> dict[Partition, tuple[int, int]]:
    """(first, end) offsets per partition as a read_committed reader sees them now.

    A partition of a topic created a moment ago may have no leader yet: such answers are asked
    again until `timeout_s` has passed.
    """
    consumer = Consumer(consumer_config(settings))
    deadline = time.monotonic() + timeout_s
    try:
        found: dict[Partition, tuple[int, int]] = {}
        for t, p in partitions:
            while (t, p) not in found:
                try:
                    found[t, p] = consumer.get_watermark_offsets(
                        TopicPartition(t, p), timeout=timeout_s
                    )
                except KafkaException as exc:
                    if exc.args[0].code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        return found
    except KafkaException as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc.args[0]) from exc
    finally:
        consumer.close()


def offsets_at(
    settings: Settings, partitions: Sequence[Partition], ms: int, timeout_s: float = 10.0
) -> dict[Partition, int]:
    """The first offset with a timestamp at or after `ms` per partition (its end if none)."""
    consumer = Consumer(consumer_config(settings))
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(t, p, ms) for t, p in partitions], timeout=timeout_s
        )
        ends = {key: high for key, (_, high) in watermarks(settings, partitions).items()}
    except KafkaException as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc.args[0]) from exc
    finally:
        consumer.close()
    return {
        (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)]
        for tp in found
    }
