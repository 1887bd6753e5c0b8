"""What `bigbrotr status` shows: offsets, lag and throughput per topic and consumer group,
rejects by reason and relay health, gathered from Kafka (and the sink's offsets in PostgreSQL).

Throughput is the difference between two samples of the offsets `interval_s` apart. Rejects and
relay health are read from their topics: rejects from at most `status.max_scan_records` newest
records per partition, relay health from the latest probe per relay within
`status.probe_window_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError
from bigbrotr.observability.lag import lag_by_partition
from bigbrotr.observability.offsets import BrokerOffsets, Partition
from bigbrotr.topics import kafka_unreachable

log = logging.getLogger("bigbrotr.status")

_POLL_S = 0.5
_IDLE_POLLS = 3  # a partition whose end is a transaction marker never yields its end offset


@dataclass
class TopicStatus:
    topic: str
    partitions: int
    end_offset: int
    records_per_s: float


@dataclass
class GroupStatus:
    group: str
    topic: str
    committed: int
    end_offset: int
    lag: int
    records_per_s: float
    offsets_in: str  # "kafka" or "postgresql" (the sink keeps them with its rows)


@dataclass
class RelayHealth:
    up: int = 0
    slow: int = 0
    down: int = 0
    down_relays: list[str] = field(default_factory=list)
    slow_relays: list[str] = field(default_factory=list)


@dataclass
class Status:
    at: float
    interval_s: float
    topics: list[TopicStatus]
    groups: list[GroupStatus]
    rejects: dict[str, int]
    relays: RelayHealth
    notes: list[str] = field(default_factory=list)


def relay_health(probes: Mapping[str, dict[str, Any]], slow_rtt_ms: int) -> RelayHealth:
    """Up, slow (opened slower than `slow_rtt_ms`) or down, from each relay's latest probe."""
    health = RelayHealth()
    for url, probe in sorted(probes.items()):
        opened = (probe.get("checks") or {}).get("open") or {}
        if not opened.get("ok"):
            health.down += 1
            health.down_relays.append(url)
        elif (opened.get("rtt_ms") or 0) > slow_rtt_ms:
            health.slow += 1
            health.slow_relays.append(url)
        else:
            health.up += 1
    return health


def gather(settings: Settings, interval_s: float) -> Status:
    """Sample the offsets twice, `interval_s` apart, then read rejects and probes."""
    kafka = settings.kafka
    offsets = BrokerOffsets(kafka.bootstrap_servers)
    topics = [kafka.topic(name) for name in sorted(kafka.topics)]
    partitions = offsets.partitions(topics)
    notes: list[str] = []
    groups = offsets.groups(kafka.topic_prefix)
    first_ends, first_positions = _sample(settings, offsets, partitions, groups, notes)
    started = time.monotonic()
    time.sleep(interval_s)
    ends, positions = _sample(settings, offsets, partitions, groups, [])
    elapsed = max(time.monotonic() - started, 1e-6)
    starts = offsets.starts(partitions)
    return Status(
        at=time.time(),
        interval_s=round(elapsed, 3),
        topics=_topics(topics, partitions, first_ends, ends, elapsed),
        groups=_groups(settings, positions, first_positions, ends, starts, elapsed),
        rejects=_rejects(settings, offsets, notes),
        relays=relay_health(_latest_probes(settings, offsets), settings.status.slow_rtt_ms),
        notes=notes,
    )


_Positions = dict[str, dict[Partition, int]]


def _sample(
    settings: Settings,
    offsets: BrokerOffsets,
    partitions: list[Partition],
    groups: list[str],
    notes: list[str],
) -> tuple[dict[Partition, int], _Positions]:
    positions = {group: offsets.committed(group) for group in groups}
    positions.update(_sink_offsets(settings, notes))
    return offsets.ends(partitions), positions


def _sink_offsets(settings: Settings, notes: list[str]) -> _Positions:
    """The sink's offsets live in PostgreSQL with its rows, not in Kafka."""
    prefix = settings.kafka.topic_prefix

    async def read() -> _Positions:
        conn = await asyncpg.connect(settings.database.dsn(), timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT consumer_group, topic, partition, next_offset FROM sink_offsets "
                "WHERE starts_with(consumer_group, $1)",
                prefix,
            )
        finally:
            await conn.close()
        found: _Positions = {}
        for row in rows:
            found.setdefault(row["consumer_group"], {})[(row["topic"], row["partition"])] = row[
                "next_offset"
            ]
        return found

    try:
        return asyncio.run(read())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        notes.append(f"sink offsets not read from PostgreSQL: {exc or type(exc).__name__}")
        return {}


def _topics(
    topics: list[str],
    partitions: list[Partition],
    first: Mapping[Partition, int],
    ends: Mapping[Partition, int],
    elapsed: float,
) -> list[TopicStatus]:
    rows = []
    for topic in topics:
        mine = [p for p in partitions if p[0] == topic]
        if not mine:
            continue
        end = sum(ends[p] for p in mine)
        rate = (end - sum(first[p] for p in mine)) / elapsed
        rows.append(TopicStatus(topic, len(mine), end, round(rate, 1)))
    return rows


def _groups(
    settings: Settings,
    positions: _Positions,
    first: _Positions,
    ends: Mapping[Partition, int],
    starts: Mapping[Partition, int],
    elapsed: float,
) -> list[GroupStatus]:
    sink_group = settings.kafka.topic_prefix + settings.sink.group_id
    rows = []
    for group, committed in sorted(positions.items()):
        by_topic: dict[str, list[Partition]] = {}
        for partition in committed:
            if partition in ends:
                by_topic.setdefault(partition[0], []).append(partition)
        for topic, mine in sorted(by_topic.items()):
            topic_ends = {p: ends[p] for p in ends if p[0] == topic}
            lag = lag_by_partition(topic_ends, committed, starts)
            done = sum(committed[p] for p in mine)
            before = sum(first.get(group, {}).get(p, committed[p]) for p in mine)
            rows.append(
                GroupStatus(
                    group,
                    topic,
                    done,
                    sum(topic_ends.values()),
                    sum(lag.values()),
                    round((done - before) / elapsed, 1),
                    "postgresql" if group == sink_group else "kafka",
                )
            )
    return rows


def _rejects(settings: Settings, offsets: BrokerOffsets, notes: list[str]) -> dict[str, int]:
    topic = settings.kafka.topic("rejects")
    partitions = offsets.partitions([topic])
    ends = offsets.ends(partitions)
    starts = offsets.starts(partitions)
    cap = settings.status.max_scan_records
    begin = {p: max(starts[p], ends[p] - cap) for p in partitions}
    if any(begin[p] > starts[p] for p in partitions):
        notes.append(f"rejects counted over the newest {cap} records of each partition")
    codec = Codec(registry=settings.kafka.schema_registry_url)
    counts: Counter[str] = Counter()
    for value in _values(settings, begin, ends):
        try:
            counts[codec.decode("Reject", value)["reason"]] += 1
        except CodecError:
            counts["unreadable"] += 1
    return dict(counts.most_common())


def _latest_probes(settings: Settings, offsets: BrokerOffsets) -> dict[str, dict[str, Any]]:
    topic = settings.kafka.topic("probes")
    partitions = offsets.partitions([topic])
    since_ms = int((time.time() - settings.status.probe_window_s) * 1000)
    ends = offsets.ends(partitions)
    recent = offsets.at_time(partitions, since_ms)
    cap = settings.status.max_scan_records
    begin = {p: max(recent[p], ends[p] - cap) for p in partitions}
    codec = Codec(registry=settings.kafka.schema_registry_url)
    latest: dict[str, dict[str, Any]] = {}
    for value in _values(settings, begin, ends):
        try:
            probe = codec.decode("RelayProbe", value)
        except CodecError:
            continue
        latest[probe["relay_url"]] = probe  # one relay's probes share a partition, in order
    return latest


def _values(
    settings: Settings, begin: Mapping[Partition, int], ends: Mapping[Partition, int]
) -> Iterator[bytes]:
    """Values of the records from `begin` up to `ends`, without a consumer group."""
    wanted = {p: end for p, end in ends.items() if end > begin[p]}
    if not wanted:
        return
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "bigbrotr-status",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "logger": log,
        }
    )
    try:
        consumer.assign([TopicPartition(t, p, begin[(t, p)]) for t, p in wanted])
        idle = 0
        while wanted and idle < _IDLE_POLLS:
            messages = consumer.consume(1000, _POLL_S)
            idle = 0 if messages else idle + 1
            for message in messages:
                key = (message.topic(), message.partition())
                if message.error() is not None or key not in wanted:
                    continue
                if cast(int, message.offset()) + 1 >= wanted[key]:
                    del wanted[key]
                value = message.value()
                if value is not None:
                    yield value
    except KafkaException as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc.args[0]) from exc
    finally:
        consumer.close()
