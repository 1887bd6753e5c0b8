"""The sink stores the aggregate changelogs on real Kafka and PostgreSQL.

Records are produced the way the worker writes them (README, "Aggregate tables"): UTF-8 keys,
JSON values, in Kafka transactions, one of them aborted. The real `bigbrotr sink` must store
the latest committed value per key, replace it when a later one comes, turn poison into dead
letters, and `bigbrotr verify --topics` must find the tables equal to a replay.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from confluent_kafka import KafkaError, Message, Producer

from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_changelog_topics, create_topics
from tests.support.cli import run_bigbrotr
from tests.support.sink import rejects, sink_env, sink_processes, stored_offsets

pytestmark = pytest.mark.integration

A, B, C = "wss://a.example", "wss://b.example", "wss://c.example"
PUBKEY = "ab" * 32
Records = list[tuple[str, str, bytes]]  # table, key, value


def _health(relay: str, last_probe_at: int, up: bool, availability: float | None) -> bytes:
    document = {
        "relay_url": relay,
        "last_probe_at": last_probe_at,
        "last_probe": {"open": {"ok": up, "rtt_ms": 40 if up else None}, "read": None},
        "up": up,
        "probes_24h": 3,
        "availability_24h": availability,
        "probes_7d": 3,
        "availability_7d": availability,
        "rtt_ms": {"open": {"p50": 40, "p95": 40, "samples": 1}},
        "hours": [[last_probe_at - last_probe_at % 3_600_000, 3, 2]],
        "samples": {"open": [[last_probe_at, 40]]},
    }
    return json.dumps(document).encode()


def _count(n: int) -> bytes:
    return str(n).encode()


class ChangelogWriter:
    """A transactional producer like the worker's; remembers where each committed record went."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "transactional.id": f"{settings.kafka.topic_prefix}{uuid.uuid4().hex}",
                "partitioner": "murmur2_random",
            }
        )
        self.producer.init_transactions(10)
        self.ends: dict[tuple[str, int], int] = {}

    def transaction(self, records: Records, *, commit: bool = True) -> None:
        delivered: list[Message] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            delivered.append(message)

        self.producer.begin_transaction()
        for table, key, value in records:
            topic = self.settings.changelog_topic(table)  # type: ignore[arg-type]
            self.producer.produce(topic, key=key.encode(), value=value, on_delivery=on_delivery)
        if not commit:
            assert self.producer.flush(10) == 0  # on the broker, then aborted
            self.producer.abort_transaction(10)
            return
        self.producer.commit_transaction(10)
        for message in delivered:
            where = (message.topic() or "", message.partition() or 0)
            self.ends[where] = max(self.ends.get(where, 0), (message.offset() or 0) + 1)


async def _wait_stored(dsn: str, ends: dict[tuple[str, int], int], within: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        stored = await stored_offsets(dsn)
        if all(stored.get(key, 0) >= end for key, end in ends.items()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the sink did not store past {ends} within {within:.0f}s: {stored}")


async def _tables(dsn: str) -> tuple[dict[tuple[str, str], int], dict[str, tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        counts = await conn.fetch("SELECT dimension, key, count FROM aggregate_counts")
        health = await conn.fetch(
            "SELECT relay_url, (extract(epoch FROM last_probe_at) * 1000)::bigint, up, "
            "availability_24h, availability_7d, document::text FROM relay_health"
        )
    finally:
        await conn.close()
    return (
        {(r[0], r[1]): r[2] for r in counts},
        {r[0]: (r[1], r[2], r[3], r[4], json.loads(r[5])) for r in health},
    )


def _row(value: bytes) -> tuple[Any, ...]:
    document = json.loads(value)
    return (
        document["last_probe_at"],
        document["up"],
        document["availability_24h"],
        document["availability_7d"],
        document,
    )


async def test_the_sink_keeps_the_latest_committed_value_of_every_aggregate_key(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings.kafka)
    made = create_changelog_topics(settings)
    assert {(r.name, r.outcome, r.partitions, r.cleanup_policy) for r in made} == {
        (settings.changelog_topic(t), "created", 6, "compact")  # type: ignore[arg-type]
        for t in ("events-per-kind", "events-per-pubkey", "events-per-day", "events-per-relay")
    } | {(settings.changelog_topic("relay-health"), "created", 6, "compact")}
    dsn = settings.database.dsn()
    await migrate(dsn)
    writer = ChangelogWriter(settings)
    writer.transaction(
        [("events-per-kind", "1", _count(999)), ("relay-health", A, b"{}")], commit=False
    )
    health_a1 = _health(A, 1_700_000_000_000, False, 0.5)
    health_a2 = _health(A, 1_700_003_600_000, True, 2 / 3)
    health_b = _health(B, 1_700_000_060_000, False, None)
    writer.transaction(
        [
            ("events-per-kind", "1", _count(3)),
            ("events-per-kind", "7", _count(1)),
            ("events-per-kind", "1", _count(4)),  # same key, same batch: the later one wins
            ("events-per-pubkey", PUBKEY, _count(2)),
            ("events-per-day", "2023-11-14", _count(4)),
            ("events-per-relay", A, _count(2)),
            ("relay-health", A, health_a1),
            ("relay-health", B, health_b),
            ("events-per-kind", "30023", b"not json"),
            ("relay-health", C, b"[1]"),
        ]
    )
    with sink_processes(settings, tmp_path, batch_max_wait_s=0.1) as sinks:
        process = sinks.start()
        await _wait_stored(dsn, writer.ends)
        counts, health = await _tables(dsn)
        assert counts == {
            ("events-per-kind", "1"): 4,
            ("events-per-kind", "7"): 1,
            ("events-per-pubkey", PUBKEY): 2,
            ("events-per-day", "2023-11-14"): 4,
            ("events-per-relay", A): 2,
        }
        assert health == {A: _row(health_a1), B: _row(health_b)}

        # Later values of the same keys, in later batches, replace the stored ones.
        writer.transaction(
            [
                ("events-per-kind", "1", _count(6)),
                ("events-per-relay", A, _count(3)),
                ("relay-health", A, health_a2),
            ]
        )
        await _wait_stored(dsn, writer.ends)
        counts, health = await _tables(dsn)
        assert counts[("events-per-kind", "1")] == 6
        assert counts[("events-per-relay", A)] == 3
        assert len(counts) == 5
        assert health == {A: _row(health_a2), B: _row(health_b)}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, sinks.log()

    dead = {(r["original"], r["reason"], r["relay_url"]) for r in rejects(settings)}
    assert dead == {(b"not json", "bad_record", None), (b"[1]", "bad_shape", C)}

    verified = run_bigbrotr(["verify", "--topics"], sink_env(settings), tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "identical" in verified.stdout
    for table, rows in (("aggregate_counts", "5"), ("relay_health", "2")):
        line = next(line for line in verified.stdout.splitlines() if table in line)
        assert line.split("│")[2].strip() == rows, line
