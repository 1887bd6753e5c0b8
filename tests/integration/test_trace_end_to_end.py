"""One trace from a relay fetch through validation to the database row, on real services.

A real relay (rust-nostr's LocalRelay) -> the synchronizer -> `bigbrotr worker` -> the sink, on
the real Kafka and PostgreSQL. The synchronizer and the sink run in the test's process and record
to the SDK's in-memory exporter; the worker runs as its own process, as deployed, and its real
OTLP exporter sends to an in-test collector (`tracing.otlp_endpoint`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.observability import tracing
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from connectors.sink.run import SinkLoop
from connectors.sink.service import run_sink
from connectors.synchronizer import sync_relay
from tests.support.events import make_events
from tests.support.loader import load_events
from tests.support.otlp_collector import CollectedSpan, OtlpCollector
from tests.support.relays import local_relay
from tests.support.waiting import until, until_answered
from tests.support.worker import WorkerProcesses

pytestmark = pytest.mark.integration

EVENTS = 12


@pytest.fixture
def in_memory_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracing.new_provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)


async def _archived(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0] for r in await conn.fetch("SELECT encode(id, 'hex') FROM events")}
    finally:
        await conn.close()


async def test_one_trace_connects_fetch_validate_and_write(
    settings: Settings, tmp_path: Path, in_memory_spans: InMemorySpanExporter
) -> None:
    settings = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"data_dir": tmp_path / "streams"})}
    )
    create_topics(settings.kafka)
    await migrate(settings.database.dsn())
    events = make_events(EVENTS, label="traced")
    ids = {event.id for event in events}
    with local_relay(tmp_path / "relay") as relay:
        assert await load_events(relay.url, events) == ids
        async with OtlpCollector() as collector:
            workers = WorkerProcesses(settings, tmp_path)
            workers.env["BIGBROTR_TRACING__OTLP_ENDPOINT"] = collector.endpoint
            workers.env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # the SDK's export period, in ms
            try:
                worker = workers.start()
                producer = new_producer(settings)
                await producer.start()
                try:
                    report = await sync_relay(
                        relay.url,
                        since=0,
                        until=int(time.time()),
                        producer=producer,
                        codec=Codec(),
                        settings=settings,
                        allow=[relay.host_port],
                    )
                finally:
                    await producer.stop()
                # The planner's probe of the relay's cap pulls some events twice; dedupe drops them.
                assert report.published >= EVENTS

                sinks: list[SinkLoop] = []
                sink = asyncio.create_task(run_sink(settings, on_start=sinks.append))
                try:
                    await until_answered(
                        lambda: _holds(settings.database.dsn(), ids),
                        "the sink stored every event",
                        within=120,
                    )
                finally:
                    if sinks:
                        sinks[0].stop()
                    await sink

                def validated() -> list[CollectedSpan]:
                    return [s for s in collector.spans if s.name == "validate"]

                await until(
                    lambda: len(validated()) >= report.published, "the worker exported its spans"
                )
                assert worker.poll() is None, workers.log()
            finally:
                workers.kill_all()

    finished = in_memory_spans.get_finished_spans()
    fetches = {s.context.span_id: s for s in finished if s.name == "fetch"}
    writes = [s for s in finished if s.name == "write"]
    assert {s.attributes[tracing.EVENT_ID] for s in validated()} == ids
    for validate in validated():
        assert validate.service == "bigbrotr-worker"
        assert validate.parent_span_id in fetches, "validate is a child of the fetch of its page"
        fetch = fetches[validate.parent_span_id]
        assert fetch.context.trace_id == validate.trace_id
        assert fetch.attributes is not None
        assert fetch.attributes[tracing.RELAY_URL] == relay.url
        assert fetch.attributes[tracing.FETCH_METHOD] == "page"
    for validate in validated():
        # Each copy is a distinct sighting (its own seen_at), so each one's records reach the
        # sink, whose write of their batch links to the validation they carry.
        assert any(_links_to(w, validate) for w in writes), f"no write links to {validate}"


async def _holds(dsn: str, ids: set[str]) -> bool:
    return await _archived(dsn) >= ids


def _links_to(write: ReadableSpan, validate: CollectedSpan) -> bool:
    return any(
        (link.context.trace_id, link.context.span_id) == (validate.trace_id, validate.span_id)
        for link in write.links
    )
