"""`bigbrotr status` against real Kafka and PostgreSQL, with a lag, rejects and probes we made."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from confluent_kafka import Consumer, TopicPartition

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from connectors.monitor.probe import empty_probe
from tests.support.cli import BIGBROTR, run_bigbrotr
from tests.support.sink import end_offsets, sink_env

pytestmark = pytest.mark.integration

RAW = 40
COMMITTED = 25


def _probe(url: str, ok: bool, rtt_ms: int) -> dict[str, Any]:
    probe = empty_probe(url, int(time.time() * 1000))
    probe["checks"]["open"] = {"ok": ok, "rtt_ms": rtt_ms if ok else None, "error": None}
    return probe


def _reject(reason: str) -> dict[str, Any]:
    return {
        "reason": reason,
        "detail": "made by the test",
        "stage": "validator",
        "relay_url": "wss://relay.example.com",
        "seen_at": datetime.now(UTC),
        "source": "test",
        "original": b"{}",
    }


def _commit(settings: Settings, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


def _two_refreshes(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """The first two JSON lines of `status --watch --json`; Ctrl-C then ends it with 0."""
    watching = subprocess.Popen(
        [*BIGBROTR, "status", "--watch", "--json", "--interval", "0.2"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watching.stdout is not None
        return [json.loads(watching.stdout.readline()) for _ in range(2)]
    finally:
        watching.send_signal(signal.SIGINT)
        assert watching.wait(timeout=30) == 0


async def test_status_shows_a_known_lag_rejects_by_reason_and_relay_health(
    settings: Settings, tmp_path: Path
) -> None:
    kafka, codec = settings.kafka, Codec()
    create_topics(kafka)
    await migrate(settings.database.dsn())
    producer = new_producer(settings)
    await producer.start()
    raw = kafka.topic("events.raw")
    for n in range(RAW):
        await producer.send(raw, f"raw {n}".encode(), key=f"key {n}".encode())
    for n in range(3):
        await producer.send(kafka.topic("events"), b"event", key=f"event {n}".encode())
    for reason in ("bad_sig", "bad_sig", "unwritable"):
        await producer.send(kafka.topic("rejects"), codec.encode("Reject", _reject(reason)))
    probes = {
        "wss://up.example.com": _probe("wss://up.example.com", True, 80),
        "wss://slow.example.com": _probe("wss://slow.example.com", True, 4000),
        "wss://down.example.com": _probe("wss://down.example.com", False, 0),
    }
    # An older probe says the down relay was up: only the latest one counts.
    for url, probe in [
        ("wss://down.example.com", _probe("wss://down.example.com", True, 5)),
        *probes.items(),
    ]:
        value = codec.encode("RelayProbe", probe)
        await producer.send_and_wait(kafka.topic("probes"), value, key=url.encode())
    await producer.stop()

    ends = end_offsets(settings)
    raw_ends = {
        (raw, p): o
        for p, o in enumerate(
            Consumer(
                {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "-"}
            ).get_watermark_offsets(TopicPartition(raw, p), timeout=10)[1]
            for p in range(kafka.topics["events.raw"].partitions)
        )
    }
    assert sum(raw_ends.values()) == RAW
    committed, left = {}, COMMITTED
    for partition, end in sorted(raw_ends.items()):
        committed[partition] = min(end, left)
        left -= committed[partition]
    worker_group = kafka.topic_prefix + settings.streams.app_id
    _commit(settings, worker_group, committed)
    sink_group = kafka.topic_prefix + settings.sink.group_id
    events_partition = next(p for p, o in ends.items() if p[0] == kafka.topic("events") and o)
    conn = await asyncpg.connect(settings.database.dsn())
    try:
        await conn.execute(
            "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) "
            "VALUES ($1, $2, $3, 1)",
            sink_group,
            *events_partition,
        )
    finally:
        await conn.close()

    env = {**sink_env(settings), "BIGBROTR_STATUS__SLOW_RTT_MS": "1000"}
    result = run_bigbrotr(["status", "--json", "--interval", "0.2"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    groups = {(g["group"], g["topic"]): g for g in status["groups"]}
    worker = groups[(worker_group, raw)]
    assert (worker["committed"], worker["end_offset"], worker["lag"]) == (COMMITTED, RAW, RAW - 25)
    assert worker["offsets_in"] == "kafka"
    sink = groups[(sink_group, kafka.topic("events"))]
    # A partition with no stored offset is read from its start: all 3 events minus the 1 stored.
    assert (sink["committed"], sink["lag"], sink["offsets_in"]) == (1, 2, "postgresql")
    topics = {t["topic"]: t for t in status["topics"]}
    assert topics[raw]["end_offset"] == RAW
    assert topics[raw]["partitions"] == kafka.topics["events.raw"].partitions
    assert status["rejects"] == {"bad_sig": 2, "unwritable": 1}
    relays = status["relays"]
    assert (relays["up"], relays["slow"], relays["down"]) == (1, 1, 1)
    assert relays["down_relays"] == ["wss://down.example.com"]
    assert relays["slow_relays"] == ["wss://slow.example.com"]

    table = run_bigbrotr(["status", "--interval", "0.2"], env, tmp_path)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "consumer groups" in table.stdout
    assert "down wss://down.example.com" in table.stdout
    assert f" {RAW - COMMITTED} " in table.stdout

    refreshes = _two_refreshes(env, tmp_path)
    assert refreshes[1]["at"] > refreshes[0]["at"]
    assert all(r["rejects"] == {"bad_sig": 2, "unwritable": 1} for r in refreshes)
