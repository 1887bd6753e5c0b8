"""The Faust worker on real Kafka: every raw record ends as exactly one sighting, reject, or
suppressed duplicate; events are emitted once per id, across crashes, restarts and reprocessing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import sign_event
from bigbrotr.topics import create_topics
from streams.reprocess import validator_group
from tests.support.cli import BIGBROTR
from tests.support.topics import create_topic

pytestmark = pytest.mark.integration

REAL_EVENTS = Path(__file__).parents[1] / "data" / "real_events.jsonl"
SECRET = "11" * 32
EXTERNAL = "external.notes"
codec = Codec()


@dataclass
class RawLoad:
    """What was written to `events.raw` and what the worker must make of it."""

    records: int = 0
    valid_ids: set[str] = field(default_factory=set)
    sightings: int = 0
    duplicates: int = 0
    rekeyed: int = 0
    bridged: int = 0
    rejects: Counter[str] = field(default_factory=Counter)


@pytest.fixture
def stream_settings(settings: Settings, tmp_path: Path) -> Settings:
    topics = {name: {"partitions": 3} for name in settings.kafka.topics}
    changed = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={
                    "topics": {
                        n: t.model_copy(update=topics[n]) for n, t in settings.kafka.topics.items()
                    }
                }
            ),
            "streams": settings.streams.model_copy(
                update={
                    "data_dir": tmp_path / "streams",
                    "max_content_bytes": 4096,
                    "external_topics": [settings.kafka.topic_prefix + EXTERNAL],
                }
            ),
        }
    )
    create_topics(changed.kafka)
    # Other systems own their topics; a worker started before one exists waits for it (30 s).
    kafka, external = changed.kafka, changed.streams.external_topics[0]
    create_topic(kafka.bootstrap_servers, external, 3, kafka.replication_factor)
    return changed


def _env(settings: Settings) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    return {
        **clean,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_KAFKA__TOPICS": json.dumps(
            {n: t.model_dump() for n, t in settings.kafka.topics.items()}
        ),
        "BIGBROTR_STREAMS__DATA_DIR": str(settings.streams.data_dir),
        "BIGBROTR_STREAMS__MAX_CONTENT_BYTES": str(settings.streams.max_content_bytes),
        "BIGBROTR_STREAMS__EXTERNAL_TOPICS": json.dumps(settings.streams.external_topics),
        "BIGBROTR_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def start_worker(stream_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, data_dir: Path | None = None) -> subprocess.Popen[bytes]:
        """A worker process; a second concurrent worker needs a `data_dir` of its own."""
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        env = _env(stream_settings)
        if data_dir is not None:
            env["BIGBROTR_STREAMS__DATA_DIR"] = str(data_dir)
        process = subprocess.Popen(
            [*BIGBROTR, "worker", *extra],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _raw(line: bytes, relay: str, seen_at_ms: int) -> bytes:
    record = {
        "relay_url": relay,
        "seen_at": datetime.fromtimestamp(seen_at_ms / 1000, UTC),
        "raw": line,
        "source": "sync",
    }
    return codec.encode("RawEvent", record)


def _produce_load(
    settings: Settings,
    count: int = 300,
    relays: tuple[str, ...] = ("wss://a.example", "wss://b.example"),
) -> RawLoad:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    topic = settings.kafka.topic("events.raw")
    load = RawLoad()

    def send(key: str, value: bytes, topic_name: str = topic) -> None:
        producer.produce(topic_name, key=key.encode(), value=value)
        if topic_name == topic:
            load.records += 1

    lines = REAL_EVENTS.read_bytes().splitlines()[:count]
    for index, line in enumerate(lines):
        event_id = json.loads(line)["id"]
        load.valid_ids.add(event_id)
        for relay in relays:
            send(event_id, _raw(line, relay, 1_700_000_000_000 + index))
            load.sightings += 1
    for line in lines[:20]:
        send(
            json.loads(line)["id"],
            _raw(line, relays[0], 1_700_000_000_000 + lines.index(line)),
        )
        load.duplicates += 1

    def reject(reason: str, text: bytes, key: str = "0" * 64) -> None:
        send(key, _raw(text, "wss://hostile.example", 1_700_000_000_000))
        load.rejects[reason] += 1

    for line in lines[:5]:
        event = json.loads(line)
        reject("bad_sig", json.dumps({**event, "sig": "0" * 128}).encode(), event["id"])
        reject(
            "bad_id", json.dumps({**event, "content": event["content"] + "!"}).encode(), event["id"]
        )
    reject("bad_json", b'{"id": ')
    reject("bad_shape", b"[]")
    reject("bad_utf8", b'{"content": "\xff\xfe"}')
    future = sign_event(SECRET, int(time.time()) + 86_400, 1, [], "from the future")
    reject("future", _event_json(future), future.id)
    large = sign_event(SECRET, 1_700_000_000, 1, [], "x" * 5000)
    reject("too_large", _event_json(large), large.id)
    send("garbage", b"\x00not avro at all")
    load.rejects["bad_record"] += 1

    misrouted = sign_event(SECRET, 1_700_000_001, 1, [], "keyed by the wrong id")
    send("f" * 64, _raw(_event_json(misrouted), "wss://a.example", 1_700_000_000_000))
    load.rekeyed += 1
    load.valid_ids.add(misrouted.id)
    load.sightings += 1

    external = settings.streams.external_topics[0]
    for n in range(5):
        note = sign_event(SECRET, 1_700_000_100 + n, 1, [["t", "external"]], f"external note {n}")
        send("", _event_json(note), external)
        load.valid_ids.add(note.id)
        load.sightings += 1
        load.bridged += 1
    send("", b"not json", external)
    load.rejects["bad_json"] += 1
    load.bridged += 1
    producer.flush(30)
    return load


def _event_json(event: Any) -> bytes:
    from bigbrotr.nostr import event_to_json

    return event_to_json(event).encode()


def _read_all(settings: Settings, name: str, expected: int, timeout_s: float = 90) -> list[bytes]:
    """Everything committed on a topic, waiting until at least `expected` records arrived
    and then a little longer so that extra (duplicate) records would be seen too."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.topic_prefix}check.{name}.{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.kafka.topic(name)])
    messages = []
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message.value())
                continue
            if len(messages) >= expected:
                quiet_until = quiet_until or time.monotonic() + 3
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return messages


def _decoded(settings: Settings, name: str, record: str, expected: int) -> list[dict[str, Any]]:
    return [codec.decode(record, value) for value in _read_all(settings, name, expected)]


def _assert_outputs(settings: Settings, load: RawLoad) -> None:
    events = _decoded(settings, "events", "Event", len(load.valid_ids))
    ids = [event["id"] for event in events]
    assert len(ids) == len(set(ids)), "an event id was emitted twice"
    assert set(ids) == load.valid_ids
    sightings = _decoded(settings, "sightings", "Sighting", load.sightings)
    facts = [(s["event_id"], s["relay_url"], s["seen_at"]) for s in sightings]
    assert len(facts) == len(set(facts)), "a sighting was emitted twice"
    assert len(sightings) == load.sightings
    rejects = _decoded(settings, "rejects", "Reject", sum(load.rejects.values()))
    assert Counter(r["reason"] for r in rejects) == load.rejects
    # Accounting: each record of events.raw (ours, the re-keyed copy, the bridged ones) ended as
    # exactly one sighting, reject, suppressed duplicate, or re-keyed original.
    raw = _read_all(settings, "events.raw", load.records + load.rekeyed + load.bridged)
    assert len(raw) == load.records + load.rekeyed + load.bridged
    assert len(raw) == len(sightings) + len(rejects) + load.duplicates + load.rekeyed


def _stop(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return time.monotonic() - started


def test_validates_dedupes_and_accounts_for_every_record(
    stream_settings: Settings, start_worker: Any
) -> None:
    load = _produce_load(stream_settings)
    worker = start_worker()
    _assert_outputs(stream_settings, load)
    assert _stop(worker) < 10


def test_sigterm_mid_stream_stops_within_ten_seconds(
    stream_settings: Settings, start_worker: Any
) -> None:
    relays = tuple(f"wss://r{n}.example" for n in range(4))
    _produce_load(stream_settings, count=1000, relays=relays)
    worker = start_worker()
    time.sleep(8)
    assert worker.poll() is None, "the worker should still be busy with the load"
    assert _stop(worker) < 10


def _busy_load(settings: Settings) -> RawLoad:
    return _produce_load(
        settings, count=1000, relays=tuple(f"wss://r{n}.example" for n in range(4))
    )


def test_sigterm_mid_stream_then_restart_loses_and_duplicates_nothing(
    stream_settings: Settings, start_worker: Any
) -> None:
    load = _busy_load(stream_settings)
    worker = start_worker()
    time.sleep(6)
    assert worker.poll() is None, "the worker should still be busy with the load"
    assert _stop(worker) < 10
    start_worker()
    _assert_outputs(stream_settings, load)


def test_kill_9_restart_and_reprocessing_lose_and_duplicate_nothing(
    stream_settings: Settings, start_worker: Any
) -> None:
    load = _busy_load(stream_settings)
    worker = start_worker()
    time.sleep(6)
    worker.kill()
    worker.wait()
    restarted = start_worker()
    _assert_outputs(stream_settings, load)
    assert _stop(restarted) < 10
    start_worker("--reprocess")
    _assert_outputs(stream_settings, load)


def _members_with_partitions(settings: Settings) -> int:
    """Members of the worker group holding partitions; 0 while it rebalances.

    A plain AdminClient: with a Python `logger` configured, librdkafka never completes this call.
    """
    group = validator_group(settings)
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
        described = admin.describe_consumer_groups([group])[group].result(5)
    except (KafkaException, FutureTimeout):
        return 0
    if described.state != ConsumerGroupState.STABLE:
        return 0
    return sum(1 for member in described.members if member.assignment.topic_partitions)


def test_two_workers_share_partitions_and_one_takes_over_from_a_killed_one(
    stream_settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    load = _busy_load(stream_settings)
    first = start_worker()
    start_worker(data_dir=tmp_path / "second-worker")
    deadline = time.monotonic() + 60
    while _members_with_partitions(stream_settings) < 2:
        assert time.monotonic() < deadline, "the two workers never shared the partitions"
        time.sleep(0.5)
    first.kill()
    first.wait()
    _assert_outputs(stream_settings, load)


def test_a_steadily_busy_worker_does_not_report_a_commit_livelock(
    stream_settings: Settings, start_worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust logs an ERROR for every partition whose consumer has not committed within
    `broker_commit_livelock_soft_timeout` (5 minutes; 10 s here, ten commit intervals, so that a
    partition fed only now and then is not flagged) while records wait. The worker commits
    through its transactions, which that check does not see unless told."""
    monkeypatch.setenv("BROKER_COMMIT_LIVELOCK_SOFT_TIMEOUT", "10")
    worker = start_worker()
    producer = Producer({"bootstrap.servers": stream_settings.kafka.bootstrap_servers})
    topic = stream_settings.kafka.topic("events.raw")
    lines = REAL_EVENTS.read_bytes().splitlines()
    deadline = time.monotonic() + 30
    sent = 0
    while time.monotonic() < deadline:
        line = lines[sent % len(lines)]
        relay = f"wss://r{sent // len(lines)}.example"
        producer.produce(topic, key=json.loads(line)["id"].encode(), value=_raw(line, relay, sent))
        sent += 1
        if sent % 50 == 0:
            producer.flush(10)
            time.sleep(0.1)
    producer.flush(30)
    _read_all(stream_settings, "sightings", sent)
    assert worker.poll() is None
    log = (tmp_path / "worker-0.log").read_text()
    assert "Has not committed" not in log, log[-3000:]
