"""Wires the sink together: topics to writers, the database, dead letters, and a Kafka source."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, SinkTopic
from bigbrotr.errors import SinkError
from bigbrotr.migrate import MigrationState, migration_status
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_changelog_topics
from connectors.backoff import Backoff
from connectors.sink.counts import CountsWriter
from connectors.sink.database import Database
from connectors.sink.events import EventsWriter
from connectors.sink.health import HealthWriter
from connectors.sink.load import BatchLoader
from connectors.sink.offsets import Partition, load_offsets
from connectors.sink.probes import ProbesWriter
from connectors.sink.rejects import RejectPublisher
from connectors.sink.relays import RelaysWriter
from connectors.sink.run import SinkLoop
from connectors.sink.sightings import SightingsWriter
from connectors.sink.source import GroupSource, Source, partitions_of
from connectors.sink.writer import TopicWriter

log = logging.getLogger("bigbrotr.sink")


def _counts(dimension: str) -> Callable[[Codec], TopicWriter[Any]]:
    return lambda _: CountsWriter(dimension)


WRITERS: dict[SinkTopic, Callable[[Codec], TopicWriter[Any]]] = {
    "events": EventsWriter,
    "sightings": SightingsWriter,
    "relays": RelaysWriter,
    "probes": ProbesWriter,
    "events-per-kind": _counts("events-per-kind"),
    "events-per-pubkey": _counts("events-per-pubkey"),
    "events-per-day": _counts("events-per-day"),
    "events-per-relay": _counts("events-per-relay"),
    "relay-health": lambda _: HealthWriter(),
}


def sink_group(settings: Settings) -> str:
    return settings.kafka.topic_prefix + settings.sink.group_id


def sink_topics(settings: Settings) -> list[str]:
    return [settings.sink_topic(name) for name in settings.sink.topics]


def sink_partitions(settings: Settings) -> list[Partition]:
    """Every partition the sink reads. Missing aggregate changelogs are created first, as the
    worker would create them: the sink may start (or replay) before the worker ever ran."""
    create_changelog_topics(settings)
    return partitions_of(settings, sink_topics(settings))


def new_database(settings: Settings, dsn: str, writers: list[TopicWriter[Any]]) -> Database:
    async def setup(conn: Any) -> None:
        for writer in writers:
            await writer.setup(conn)

    backoff = Backoff(settings.sink.retry_base_s, settings.sink.retry_max_s)
    return Database(dsn, backoff, setup)


async def check_migrated(dsn: str) -> None:
    """The sink writes the tables of the migrations: refuse a database that lacks them."""
    statuses = await migration_status(dsn)
    pending = [s for s in statuses if s.state != MigrationState.APPLIED]
    if pending:
        names = ", ".join(f"{s.version:04d} {s.name} ({s.state})" for s in pending)
        raise SinkError(f"the database is not migrated: {names}; run `bigbrotr migrate` first")


@asynccontextmanager
async def sink_parts(
    settings: Settings,
    dsn: str,
    make_source: Callable[[Database], Source],
    *,
    publish_rejects: bool = True,
) -> AsyncIterator[SinkLoop]:
    """A ready `SinkLoop` on `dsn`; its Kafka clients and connection are closed afterwards."""
    await check_migrated(dsn)
    codec = Codec(registry=settings.kafka.schema_registry_url)
    writers = {settings.sink_topic(n): WRITERS[n](codec) for n in settings.sink.topics}
    database = new_database(settings, dsn, list(writers.values()))
    producer = new_producer(settings) if publish_rejects else None
    if producer is not None:
        await producer.start()
    rejects = RejectPublisher(producer, codec, settings.kafka.topic("rejects"))
    source: Source | None = None
    try:
        source = make_source(database)
        yield SinkLoop(
            source,
            database,
            BatchLoader(writers, sink_group(settings), rejects),
            topics=list(writers),
            batch_size=settings.sink.batch_size,
            batch_max_wait_s=settings.sink.batch_max_wait_s,
            shutdown_timeout_s=settings.sink.shutdown_timeout_s,
        )
    finally:
        if source is not None:
            await source.close()
        await database.close()
        if producer is not None:
            await producer.stop(timeout_s=2.0)


async def run_sink(settings: Settings, on_start: Callable[[SinkLoop], None] | None = None) -> None:
    """`bigbrotr sink`: follow the topics as one member of the sink group until stopped."""
    topics = sink_topics(settings)
    sink_partitions(settings)
    group = sink_group(settings)
    loop = asyncio.get_running_loop()

    def group_source(database: Database) -> Source:
        async def stored() -> dict[tuple[str, int], int]:
            return await database.run(lambda conn: load_offsets(conn, group, topics))

        return GroupSource(settings, topics, stored, loop)

    async with sink_parts(settings, settings.database.dsn(), group_source) as sink:
        if on_start is not None:
            on_start(sink)
        log.info("sink: group %s reading %s into %s", group, ", ".join(topics), sink.database.where)
        totals = await sink.run()
        log.info(
            "sink stopped: %d records in %d batches, %d dead letters",
            totals.records,
            totals.batches,
            totals.rejected,
        )
