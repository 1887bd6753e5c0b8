"""Sink rows/s into the indexed `events` table against a bare COPY of the same rows (the ceiling),
and a timed replay of N events into an empty database.

One run: fresh topics under a `bench.<random>.` prefix; N `Event` records produced to `events`;
then, back to back:
1. the sink: `bigbrotr replay` (the sink's own loop, writers and transactions: consume
   read_committed, decode Avro, COPY into staging, one INSERT ... ON CONFLICT per batch, offsets
   stored with the rows) into a freshly created and migrated database, timed from start to the
   last commit; its rate is the sink's rows/s and the replay's events/s;
2. the ceiling: the same N rows, already as tuples (built outside the clock), COPYed in chunks of
   `sink.batch_size` straight into the `events` table of another freshly migrated database,
   identical (same indexes, same generated column) and empty; only the COPY calls are timed.
It prints both rates and their ratio (target >= 0.5), then drops both databases and the topics.

Events: the 1,000 real events of `tests/data/real_events.jsonl`, cycled, each copy with its own
id and `created_at`, so sizes, unicode and tags (and so the GIN index work) stay real. The sink
does not check signatures (the worker did), so they are not re-signed: signing a million events
would take longer than the benchmark itself on a small machine.
Run from the checkout: `.venv/bin/python -m bench.sink_bench [--events N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Producer

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics, new_admin
from connectors.sink.databases import create_database, drop_database
from connectors.sink.events import STAGING, event_row
from connectors.sink.replay import plan, replay

TARGET = 0.5
REAL_EVENTS = Path(__file__).parents[1] / "tests" / "data" / "real_events.jsonl"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
RELAYS = tuple(f"wss://relay{n}.example" for n in range(8))


def records(count: int) -> Iterator[dict[str, Any]]:
    """`count` distinct Event records derived from the real events, the same on every call."""
    real = [json.loads(line) for line in REAL_EVENTS.read_text().splitlines()]
    for index in range(count):
        base = real[index % len(real)]
        yield {
            **base,
            "id": hashlib.sha256(f"bench event {index}".encode()).hexdigest(),
            "created_at": base["created_at"] + index,
            "first_seen_relay": RELAYS[index % len(RELAYS)],
            "first_seen_at": T0 + timedelta(milliseconds=index),
        }


def produce(settings: Settings, count: int) -> float:
    codec = Codec()
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    topic = settings.kafka.topic("events")
    started = time.perf_counter()
    for record in records(count):
        value = codec.encode("Event", record)
        while True:
            try:
                producer.produce(topic, value, record["id"].encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("bench: Kafka did not take every record")
    return time.perf_counter() - started


async def sink_rate(settings: Settings, dsn: str, count: int) -> float:
    """Seconds for the sink's replay of the whole topic into the fresh database `dsn`."""
    replay_plan = plan(settings)
    assert replay_plan.total == count, (replay_plan.total, count)
    started = time.perf_counter()
    totals = await replay(settings, dsn, replay_plan, publish_rejects=False)
    elapsed = time.perf_counter() - started
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    if stored != count or totals.rejected:
        raise SystemExit(f"bench: the sink stored {stored} of {count} events; a wrong run")
    return elapsed


async def copy_rate(dsn: str, count: int, chunk: int) -> float:
    """Seconds spent in bare COPYs of the same rows into the empty, identical events table."""
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    columns = [name for name, _ in STAGING.columns]
    spent = 0.0
    try:
        rows: list[tuple[Any, ...]] = []
        for record in records(count):
            rows.append(event_row(record).row)
            if len(rows) == chunk:
                spent += await _copy(conn, rows, columns)
                rows = []
        if rows:
            spent += await _copy(conn, rows, columns)
    finally:
        await conn.close()
    return spent


async def _copy(conn: Any, rows: list[tuple[Any, ...]], columns: list[str]) -> float:
    started = time.perf_counter()
    await conn.copy_records_to_table("events", records=rows, columns=columns)
    return time.perf_counter() - started


async def run(events: int) -> None:
    base = load_settings()
    prefix = f"bench.{uuid.uuid4().hex[:12]}."
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix})
    sink = base.sink.model_copy(update={"topics": ["events"]})
    settings = base.model_copy(update={"kafka": kafka, "sink": sink})
    create_topics(settings.kafka)
    server = settings.database.dsn()
    names = [f"bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("sink", "copy")]
    sink_db = await create_database(server, names[0])
    copy_db = await create_database(server, names[1])
    try:
        print(f"producing {events:,} events to {settings.kafka.topic('events')} ...", flush=True)
        produced_s = produce(settings, events)
        print(f"  produced in {produced_s:.1f} s", flush=True)
        sink_s = await sink_rate(settings, sink_db, events)
        print(
            f"sink (replay into an empty database): {events / sink_s:,.0f} events/s "
            f"({sink_s:.1f} s, batch {settings.sink.batch_size})",
            flush=True,
        )
        copy_s = await copy_rate(copy_db, events, settings.sink.batch_size)
        print(
            f"ceiling (bare COPY, same rows, identical empty table): {events / copy_s:,.0f} "
            f"rows/s ({copy_s:.1f} s in COPY)",
            flush=True,
        )
        ratio = copy_s / sink_s
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"ratio sink / ceiling: {ratio:.2f} ({verdict} the target {TARGET})")
    finally:
        await drop_database(sink_db)
        await drop_database(copy_db)
        admin = new_admin(settings.kafka.bootstrap_servers)
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to load (1,000,000)")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")
    asyncio.run(run(args.events))


if __name__ == "__main__":
    main()
