"""Runs `bigbrotr sink` as a real process and reads what it stored."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bigbrotr.config import Settings
from connectors.sink.service import sink_partitions
from connectors.sink.source import partitions_of, watermarks
from tests.support.cli import BIGBROTR
from tests.support.sink_load import SinkLoad


def sink_env(settings: Settings, **sink: object) -> dict[str, str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    env = {
        **clean,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_DATABASE__URL": settings.database.url,
        "BIGBROTR_SINK__SESSION_TIMEOUT_S": "6",
        "BIGBROTR_LOG_LEVEL": "INFO",
        "COLUMNS": "200",
    }
    env.update({f"BIGBROTR_SINK__{k.upper()}": str(v) for k, v in sink.items()})
    return env


class SinkProcesses:
    """Starts sink processes, each logging to its own file; kills what is left at the end."""

    def __init__(self, settings: Settings, logs: Path, **sink: object) -> None:
        self.env = sink_env(settings, **sink)
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"sink-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [*BIGBROTR, *(args or ("sink",))], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.started.append(process)
        return process

    def log(self, index: int = -1) -> str:
        return (self.logs / f"sink-{index % len(self.started)}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextmanager
def sink_processes(settings: Settings, logs: Path, **sink: object) -> Iterator[SinkProcesses]:
    processes = SinkProcesses(settings, logs, **sink)
    try:
        yield processes
    finally:
        processes.kill_all()


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    partitions = sink_partitions(settings)
    return {key: high for key, (_, high) in watermarks(settings, partitions).items()}


async def stored_offsets(dsn: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT topic, partition, next_offset FROM sink_offsets")
    finally:
        await conn.close()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def progress(dsn: str, ends: dict[tuple[str, int], int]) -> float:
    """Share of the records up to `ends` the database holds, by its stored offsets."""
    try:
        stored = await stored_offsets(dsn)
    except (OSError, asyncpg.PostgresError):
        return 0.0
    return sum(min(stored.get(k, 0), end) for k, end in ends.items()) / max(sum(ends.values()), 1)


async def wait_progress(
    dsn: str, ends: dict[tuple[str, int], int], at_least: float, within: float
) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        share = await progress(dsn, ends)
        if share >= at_least:
            return share
        await asyncio.sleep(0.01)
    raise AssertionError(f"the sink did not reach {at_least:.0%} of the load within {within:.0f}s")


async def assert_holds(dsn: str, load: SinkLoad) -> None:
    """The tables hold exactly what the load says, nothing more."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = [r[0] for r in await conn.fetch("SELECT encode(id, 'hex') FROM events")]
        sightings = {
            (r[0], r[1]): (r[2], r[3])
            for r in await conn.fetch(
                "SELECT encode(event_id, 'hex'), relay_url, first_seen_at, last_seen_at "
                "FROM sightings"
            )
        }
        relays = {
            r["url"]: dict(r)
            for r in await conn.fetch("SELECT url, network, source, discovered_at FROM relays")
        }
        probes = [
            (r[0], r[1]) for r in await conn.fetch("SELECT relay_url, probed_at FROM relay_probes")
        ]
        documents = await conn.fetchval("SELECT count(*) FROM metadata_documents")
        series = await conn.fetchval("SELECT count(*) FROM relay_metadata")
    finally:
        await conn.close()
    assert len(ids) == len(set(ids))
    assert set(ids) == load.event_ids
    assert sightings == load.sightings
    assert relays == load.relays
    assert len(probes) == len(set(probes))
    assert set(probes) == load.probes
    # nip11 in three versions, the DNS answer and the geo document, each stored once.
    assert documents == 5
    assert series == 3 * len(load.probes)


def rejects(settings: Settings) -> list[dict[str, Any]]:
    """Every record of `rejects`, decoded."""
    from confluent_kafka import Consumer, TopicPartition

    from bigbrotr.codec import Codec

    topic = settings.kafka.topic("rejects")
    partitions = partitions_of(settings, [topic])
    ends = {key: high for key, (_, high) in watermarks(settings, partitions).items()}
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "-",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(t, p, 0) for t, p in partitions])
    codec, found, read = Codec(), [], 0
    try:
        while read < sum(ends.values()):
            for message in consumer.consume(500, 1.0):
                if message.error() is None:
                    read += 1
                    found.append(codec.decode("Reject", message.value()))
    finally:
        consumer.close()
    return found
