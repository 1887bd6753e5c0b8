"""Aggregate tables on real Kafka, read back from their changelog topics as another system would.

Raw records (several kinds, authors, days and relays, with duplicates) go through the real
`bigbrotr worker`, probes go to `probes`; the changelogs must hold exact counts and health, also
after the worker is stopped with SIGTERM, the whole raw load is delivered again, and it restarts.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import Event, event_to_json, sign_event
from bigbrotr.topics import admin_client, create_topics
from tests.support.events import BASE_TIME, TEST_KEYS
from tests.support.worker import WorkerProcesses

pytestmark = pytest.mark.integration

codec = Codec()
PARTITIONS = 3
HOUR_MS = 3_600_000
PROBE_START_MS = 1_700_006_400_000  # an hour boundary
RELAY_A, RELAY_B, RELAY_C = "wss://a.example", "wss://b.example", "wss://c.example"
COUNT_TABLES = ("events-per-kind", "events-per-pubkey", "events-per-day", "events-per-relay")
# The UTC days of BASE_TIME + n days.
DAYS = ("2023-11-14", "2023-11-15", "2023-11-16", "2023-11-17", "2023-11-18")

Tables = dict[str, dict[str, Any]]


@pytest.fixture
def agg_settings(settings: Settings, tmp_path: Path) -> Settings:
    topics = {
        name: topic.model_copy(update={"partitions": PARTITIONS})
        for name, topic in settings.kafka.topics.items()
    }
    changed = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topics": topics}),
            "streams": settings.streams.model_copy(update={"data_dir": tmp_path / "streams"}),
        }
    )
    create_topics(changed.kafka)
    return changed


@pytest.fixture
def workers(agg_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(agg_settings, tmp_path)
    yield processes
    processes.kill_all()


def _events() -> list[Event]:
    """40 events: kinds 1/7/30023, two authors, four UTC days, in patterns that do not align."""
    return [
        sign_event(
            TEST_KEYS[n % 2],
            BASE_TIME + (n % 4) * 86_400,
            (1, 7, 30_023)[n % 3],
            [["t", "aggregates"]],
            f"aggregate {n}",
        )
        for n in range(40)
    ]


def _later_events() -> list[Event]:
    """Four events of a kind, author and day nothing else has."""
    return [
        sign_event(TEST_KEYS[3], BASE_TIME + 4 * 86_400, 9_999, [], f"after the restart {n}")
        for n in range(4)
    ]


def _raw(event: Event, relay: str, seen_ms: int) -> tuple[bytes, bytes]:
    record = {
        "relay_url": relay,
        "seen_at": datetime.fromtimestamp(seen_ms / 1000, UTC),
        "raw": event_to_json(event).encode(),
        "source": "sync",
    }
    return event.id.encode(), codec.encode("RawEvent", record)


def _raw_load(events: list[Event]) -> list[tuple[bytes, bytes]]:
    """Every event from relay A, the even ones also from B; the first five records delivered
    twice, the first six events seen by A once more later, and one event with a bad signature."""
    seen = BASE_TIME * 1000
    records = [_raw(event, RELAY_A, seen + n) for n, event in enumerate(events)]
    records += [_raw(event, RELAY_B, seen + n) for n, event in enumerate(events) if n % 2 == 0]
    records += records[:5]
    records += [_raw(event, RELAY_A, seen + 60_000 + n) for n, event in enumerate(events[:6])]
    forged = replace(events[0], sig="0" * 128)
    records.append(_raw(forged, RELAY_A, seen))
    return records


def _probe(relay: str, hour: int) -> dict[str, Any]:
    """Relay A is down every third hour; its open RTT is 100 + hour, and on even hours a read
    check passes in 200 + 2 * hour ms."""
    up = hour % 3 != 0
    open_check = {"ok": up, "rtt_ms": 100 + hour if up else None, "error": None if up else "no"}
    read = {"ok": True, "rtt_ms": 200 + 2 * hour, "error": None} if hour % 2 == 0 else None
    if relay == RELAY_B:
        open_check, read = {"ok": False, "rtt_ms": None, "error": "refused"}, None
    return {
        "relay_url": relay,
        "network": "clearnet",
        "probed_at": PROBE_START_MS + hour * HOUR_MS + 60_000,
        "checks": {"open": open_check, "read": read, "write": None},
    }


def _produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    # Partitioned as the project's producer and Faust do, so one id is in one partition.
    config = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "partitioner": "murmur2_random",
    }
    producer = Producer(config)
    for key, value in records:
        producer.produce(settings.kafka.topic(topic), key=key, value=value)
    assert producer.flush(30) == 0


def _probes(relay: str, hours: range) -> list[tuple[bytes, bytes]]:
    return [(relay.encode(), codec.encode("RelayProbe", _probe(relay, h))) for h in hours]


def _group(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}{settings.streams.app_id}"


def _changelog(settings: Settings, table: str) -> str:
    return f"{_group(settings)}-{table}-changelog"


def _read_committed(settings: Settings, topics: list[str]) -> list[Message]:
    """Every committed record of these topics, as another system reads them (assigned, from the
    start, read_committed), once a second passes with nothing more."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.topic_prefix}reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    tps = [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS)]
    messages: list[Message] = []
    try:
        # Partitions holding records must deliver one before the reading may stop.
        waiting = {(tp.topic, tp.partition) for tp in tps if _high_watermark(consumer, tp) > 0}
        consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in tps])
        deadline = time.monotonic() + 20
        quiet_until = time.monotonic() + 1
        while time.monotonic() < deadline and (waiting or time.monotonic() < quiet_until):
            for message in consumer.consume(num_messages=1000, timeout=0.1):
                if message.error() is None:
                    messages.append(message)
                    waiting.discard((message.topic() or "", message.partition() or 0))
                    quiet_until = time.monotonic() + 1
    finally:
        consumer.close()
    return messages


def _data_ends(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """Per partition, the offset after its last committed record: where a consumer that has
    processed everything commits (transaction markers after it are never delivered)."""
    ends = {(topic, p): 0 for topic in topics for p in range(PARTITIONS)}
    for message in _read_committed(settings, topics):
        ends[message.topic() or "", message.partition() or 0] = (message.offset() or 0) + 1
    return ends


def _high_watermark(consumer: Consumer, tp: TopicPartition) -> int:
    """0 for a topic the worker has not created yet."""
    try:
        return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
    except KafkaException:
        return 0


def _committed(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    request = ConsumerGroupTopicPartitions(
        _group(settings), [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    )
    admin = admin_client(settings.kafka)
    listed = admin.list_consumer_group_offsets([request])[_group(settings)].result(timeout=10)
    return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in listed.topic_partitions}


def _wait_processed(settings: Settings, timeout_s: float = 60) -> None:
    """Until the worker has committed past every record of every topic the aggregates depend on.

    The records are read before and after the committed offsets, so that output still being
    committed (and the records it will make the worker read) is not missed.
    """
    topics = [settings.kafka.topic(name) for name in ("events.raw", "probes")]
    topics.append(f"{_group(settings)}-aggregate-increments")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = _data_ends(settings, topics)
        committed = _committed(settings, topics)
        after = _data_ends(settings, topics)
        if before == after and all(committed[tp] >= end for tp, end in after.items()):
            return
        time.sleep(0.5)
    pytest.fail(f"the worker did not catch up: ends {after}, committed {committed}")


def _read_tables(settings: Settings) -> Tables:
    """The latest committed value per key of every aggregate changelog: keys decoded as UTF-8,
    values as JSON, nothing of Faust's needed."""
    tables = [*COUNT_TABLES, "relay-health"]
    names = {_changelog(settings, table): table for table in tables}
    state: Tables = {table: {} for table in tables}
    for message in _read_committed(settings, list(names)):
        key, value = message.key(), message.value()
        assert key is not None
        assert value is not None
        state[names[message.topic() or ""]][key.decode()] = json.loads(value)
    return state


def _expected_counts(events: list[Event], later: list[Event]) -> Tables:
    days = Counter(DAYS[(event.created_at - BASE_TIME) // 86_400] for event in events + later)
    return {
        "events-per-kind": dict(Counter(str(event.kind) for event in events + later)),
        "events-per-pubkey": dict(Counter(event.pubkey for event in events + later)),
        "events-per-day": dict(days),
        "events-per-relay": {
            RELAY_A: len(events),
            RELAY_B: len(events) // 2 + len(later),
            **({RELAY_C: len(later)} if later else {}),
        },
    }


def _summary(value: dict[str, Any]) -> dict[str, Any]:
    keys = ("last_probe_at", "up", "probes_24h", "availability_24h", "probes_7d")
    return {
        **{key: value[key] for key in keys},
        "availability_7d": value["availability_7d"],
        "rtt_ms": value["rtt_ms"],
    }


def _rtt(p50: int | None, p95: int | None, samples: int) -> dict[str, Any]:
    return {"p50": p50, "p95": p95, "samples": samples}


def _rejects(settings: Settings, stage: str) -> list[dict[str, Any]]:
    messages = _read_committed(settings, [settings.kafka.topic("rejects")])
    rejects = [codec.decode("Reject", message.value() or b"") for message in messages]
    return [reject for reject in rejects if reject["stage"] == stage]


def test_counts_and_health_are_exact_and_survive_a_restart(
    agg_settings: Settings, workers: WorkerProcesses
) -> None:
    settings = agg_settings
    events, later = _events(), _later_events()
    raw = _raw_load(events)
    # From another system's topic: no relay, so it adds to no relay's count.
    external = {
        "relay_url": None,
        "seen_at": datetime.fromtimestamp(BASE_TIME, UTC),
        "raw": event_to_json(events[0]).encode(),
        "source": "external:x",
    }
    _produce(
        settings, "events.raw", [*raw, (events[0].id.encode(), codec.encode("RawEvent", external))]
    )
    _produce(settings, "probes", _probes(RELAY_A, range(30)) + _probes(RELAY_B, range(1)))
    _produce(settings, "probes", [(b"garbage", b"\x00not avro")])

    worker = workers.start()
    _wait_processed(settings)
    tables = _read_tables(settings)
    counts = {table: tables[table] for table in COUNT_TABLES}
    assert counts == _expected_counts(events, [])
    assert all(type(count) is int for table in counts.values() for count in table.values())
    health = tables["relay-health"]
    assert set(health) == {RELAY_A, RELAY_B}
    assert _summary(health[RELAY_A]) == {
        "last_probe_at": PROBE_START_MS + 29 * HOUR_MS + 60_000,
        "up": True,
        "probes_24h": 24,
        "availability_24h": 16 / 24,
        "probes_7d": 30,
        "availability_7d": 20 / 30,
        "rtt_ms": {
            "open": _rtt(117, 129, 16),
            "read": _rtt(232, 256, 12),
            "write": _rtt(None, None, 0),
        },
    }
    assert _summary(health[RELAY_B]) == {
        "last_probe_at": PROBE_START_MS + 60_000,
        "up": False,
        "probes_24h": 1,
        "availability_24h": 0.0,
        "probes_7d": 1,
        "availability_7d": 0.0,
        "rtt_ms": {check: _rtt(None, None, 0) for check in ("open", "read", "write")},
    }
    dead = _rejects(settings, "aggregates")
    assert [(r["reason"], r["original"]) for r in dead] == [("bad_record", b"\x00not avro")]

    assert workers.stop(worker) == 0
    # The whole raw load again (a relay re-synced from scratch), new events, two more probes.
    seen = BASE_TIME * 1000 + 120_000
    fresh = [_raw(e, relay, seen + n) for n, e in enumerate(later) for relay in (RELAY_B, RELAY_C)]
    _produce(settings, "events.raw", raw + fresh)
    _produce(settings, "probes", _probes(RELAY_A, range(30, 32)))
    workers.start()
    _wait_processed(settings)
    tables = _read_tables(settings)
    assert {table: tables[table] for table in COUNT_TABLES} == _expected_counts(events, later)
    assert _summary(tables["relay-health"][RELAY_A]) == {
        "last_probe_at": PROBE_START_MS + 31 * HOUR_MS + 60_000,
        "up": True,
        "probes_24h": 24,
        "availability_24h": 16 / 24,
        "probes_7d": 32,
        "availability_7d": 21 / 32,
        "rtt_ms": {
            "open": _rtt(119, 131, 16),
            "read": _rtt(236, 260, 12),
            "write": _rtt(None, None, 0),
        },
    }
    assert tables["relay-health"][RELAY_B] == health[RELAY_B]
    assert len(_rejects(settings, "aggregates")) == 1
